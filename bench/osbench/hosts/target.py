"""The `hosts` target: an SSH inventory, or the local lab's when none is named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osbench import targets
from osbench.clock import Clock, RealClock
from osbench.errors import UserError
from osbench.hosts.base import Host
from osbench.hosts.inventory import Inventory, load_inventory
from osbench.hosts.ssh import close_all, connect
from osbench.scenario import TargetSpec

if TYPE_CHECKING:
    from osbench.kinds.base import CaseContext


class HostsTarget:
    """An opened inventory: its hosts, connected on first use."""

    simulated = False

    def __init__(self, inventory: Inventory, *, lab: bool) -> None:
        self.clock: Clock = RealClock()
        self.inventory = inventory
        self.lab = lab
        self.hosts: dict[str, Host] = connect(inventory)

    def describe(self) -> dict[str, Any]:
        """The inventory without key files or password variables."""
        return {
            "type": "hosts",
            "simulated": False,
            "lab": self.lab,
            "inventory": self.inventory.file,
            "host_key_policy": self.inventory.host_key_policy,
            "hosts": {
                name: {"address": h.address, "port": h.port, "user": h.user, "jump": h.jump,
                       "roles": list(h.roles), "interfaces": list(h.interfaces),
                       "data_address": h.traffic_address, "iperf3_ports": list(h.iperf3_ports)}
                for name, h in self.inventory.hosts.items()
            },
        }

    async def aclose(self) -> None:
        await close_all(self.hosts)


def lab_inventory() -> Path:
    """The running local lab's inventory file; UserError when the lab is not up."""
    from osbench.lab import inventory_path  # only when the lab is the target

    path = inventory_path()
    if not path.is_file():
        raise UserError("no host inventory given and the local lab is not up",
                        hint="run `osbench lab up` as root, or name an inventory with "
                             "--hosts FILE")
    return path


def inventory_path(named: str | None, spec: TargetSpec) -> Path:
    """The inventory host names refer to: the one a scenario's params name, else the
    run's (`--hosts FILE`, or the scenario's `target.hosts`), else the running local
    lab's. Whatever the case's target kind: a cloud audit's versions check and a
    rootwrap case on a host use the same --hosts as a hosts target does."""
    given = named or spec.hosts
    return Path(given) if given else lab_inventory()


def connect_for_case(ctx: CaseContext, named: str | None) -> tuple[Inventory, dict[str, Host]]:
    """The case's inventory (`inventory_path`) and its hosts, connected on first use
    and closed when the case ends."""
    inventory = load_inventory(inventory_path(named, ctx.target_spec))
    hosts = connect(inventory)

    async def close() -> None:
        await close_all(hosts)

    ctx.add_cleanup(close, f"close connections to {inventory.file}")
    return inventory, hosts


@asynccontextmanager
async def open_hosts(spec: TargetSpec, seed: int) -> AsyncIterator[HostsTarget]:
    """The hosts of `spec.hosts`, or of the local lab; closed on exit."""
    path = inventory_path(None, spec)
    target = HostsTarget(load_inventory(path), lab=spec.hosts is None)
    try:
        yield target
    finally:
        await target.aclose()


targets.register_opener("hosts", open_hosts)
