"""The local lab: network namespaces on this machine as a network node, a
client and targets, each with its own sshd (and iperf3 servers on targets),
so host scenarios run the SSH, ethtool and iperf3 paths for real.

`osbench lab up|down|status` (root only); the layout is in `topology`.
"""

from osbench.lab.manage import LabError, LabStatus, down, inventory_path, status, up
from osbench.lab.topology import DEFAULT_STATE_DIR, STATE_DIR_ENV, LabConfig, LabHost

__all__ = [
    "DEFAULT_STATE_DIR",
    "STATE_DIR_ENV",
    "LabConfig",
    "LabError",
    "LabHost",
    "LabStatus",
    "down",
    "inventory_path",
    "status",
    "up",
]
