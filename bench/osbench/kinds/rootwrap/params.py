"""The rootwrap kind's parameters: the schema, with light imports only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from osbench.scenario.schema import NonNegativeInt, PositiveDuration, PositiveInt

Mode = Literal["direct", "sudo", "rootwrap", "daemon"]
MODES: tuple[Mode, ...] = ("direct", "sudo", "rootwrap", "daemon")


@dataclass(frozen=True)
class RootwrapParams:
    #: Modes to compare; `direct` is required (every ratio is against it).
    #: `sudo` is skipped, with a journaled reason, where sudo is not installed.
    modes: tuple[Mode, ...] = ("direct", "rootwrap", "daemon")
    #: Rounds of samples; each round takes one sample of every mode.
    samples: PositiveInt = 50
    #: Unjournaled calls per mode after the first one, before sampling.
    warmup: NonNegativeInt = 5
    #: The command; `{netns}` is replaced by the DHCP namespace. Default: the
    #: DHCP agent's `ip netns exec {netns} ip route list`.
    command: tuple[str, ...] = ()
    #: An existing namespace for `{netns}` (never created or removed). Default:
    #: a fresh `qdhcp-<uuid>` with one port, removed when the case ends.
    qdhcp_netns: str | None = None
    #: An existing rootwrap.conf on the machine (e.g. /etc/neutron/rootwrap.conf).
    #: Default: one generated with IpFilter and IpNetnsExecFilter, removed afterwards.
    conf: str | None = None
    #: The rootwrap command (e.g. neutron-rootwrap). Default: oslo-rootwrap
    #: beside osbench's Python here, on PATH on a host.
    wrapper: str | None = None
    daemon_wrapper: str | None = None
    #: Run on this machine inside this existing network namespace.
    netns: str | None = None
    #: Run on this host of `inventory` (default: the run's --hosts FILE, else the
    #: local lab's inventory).
    host: str | None = None
    inventory: str | None = None
    #: The Python on `host` that runs the helper (it needs oslo.rootwrap for `daemon`);
    #: default `python3`, or on a host of the local lab (a namespace of this
    #: machine) this osbench's own Python, with the wrappers beside it.
    python: str | None = None
    #: A single call taking longer than this is an error.
    timeout_s: PositiveDuration = 30.0

    def __post_init__(self) -> None:
        if "direct" not in self.modes:
            raise ValueError("modes must include 'direct': every ratio is against it")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes lists a mode twice: {list(self.modes)!r}")
        if self.netns and self.host:
            raise ValueError("give netns (this machine) or host (an inventory's), not both")
        if self.inventory and not self.host:
            raise ValueError("inventory names hosts; say which with host")
