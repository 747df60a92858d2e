"""Hosts: machines that run commands, reached over SSH or locally.

`connect(load_inventory(path))` gives one Host per inventory entry; every
command's failure (connect, auth, host key, exit status, timeout) is a
HostError naming the host and the command.
"""

from osbench.hosts.base import CommandResult, Host
from osbench.hosts.inventory import HostSpec, Inventory, Role, load_inventory, parse_inventory_text
from osbench.hosts.local import LocalHost
from osbench.hosts.ssh import SSHHost, close_all, connect

__all__ = [
    "CommandResult",
    "Host",
    "HostSpec",
    "Inventory",
    "LocalHost",
    "Role",
    "SSHHost",
    "close_all",
    "connect",
    "load_inventory",
    "parse_inventory_text",
]
