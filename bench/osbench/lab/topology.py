"""The local lab's layout: names and addresses, decided before anything is made.

    root namespace                       lab namespaces (prefix osb-)
    --------------                       ---------------------------------------------
    osb-br 198.19.0.1/24  --veth-- mgmt0 in every lab host (sshd listens there only)

    osb-client  eth0 198.18.0.2 ==Q queues== cl0 198.18.0.1  osb-netnode (ip_forward=1)
                                                tg0 198.18.1.1 ==Q queues==
                                                  nn0 in osb-fabric, bridge br0
                                                    t1 -- eth0 198.18.1.11  osb-target1
                                                    t2 -- eth0 198.18.1.12  osb-target2 ...

Every address is in the benchmarking range 198.18.0.0/15 (RFC 2544): data in
198.18.0.0/24 and 198.18.1.0/24 (inside namespaces only), management in
198.19.M.0/24 (the only lab address in the root namespace is the bridge's).
Nothing routes anywhere else: no lab namespace has a default route, and the
root namespace only gains the bridge's connected /24.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from osbench.hosts.inventory import Role

DEFAULT_STATE_DIR = Path("/run/osbench-lab")
#: Environment variable naming another state directory (tests, several labs).
STATE_DIR_ENV = "OSBENCH_LAB_DIR"

CLIENT_SUBNET = "198.18.0"  # client <-> network node
TARGET_SUBNET = "198.18.1"  # network node <-> targets (through the fabric bridge)
MGMT_PREFIX = "198.19"


def default_state_dir() -> Path:
    """Where the lab keeps its keys, configs, pidfiles and inventory."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class LabConfig:
    """How big the lab is and what it is called."""

    targets: int = 6
    #: Queues of the network node's links (and their peers): the sweep's maximum.
    queues: int = 8
    #: iperf3 servers per target, one per stream (iperf3 serves one test at a time).
    ports_per_target: int = 4
    first_port: int = 5201
    #: Prefix of every namespace and root-namespace link; at most 5 characters so
    #: `PREFIXm-target64` fits Linux's 15-character interface names.
    prefix: str = "osb-"
    #: Third octet of the management subnet 198.19.M.0/24.
    mgmt_net: int = 0
    state_dir: Path = field(default_factory=default_state_dir)

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.targets <= 64, f"targets must be 1..64, got {self.targets}"),
            (1 <= self.queues <= 64, f"queues must be 1..64, got {self.queues}"),
            (1 <= self.ports_per_target <= 32,
             f"ports_per_target must be 1..32, got {self.ports_per_target}"),
            (1024 <= self.first_port <= 65535 - self.ports_per_target,
             f"first_port must leave room for {self.ports_per_target} ports above 1023"),
            (1 <= len(self.prefix) <= 5 and self.prefix.replace("-", "").isalnum(),
             f"prefix must be 1..5 letters, digits or '-', got {self.prefix!r}"),
            (0 <= self.mgmt_net <= 255, f"mgmt_net must be 0..255, got {self.mgmt_net}"),
        ]
        for ok, problem in checks:
            if not ok:
                raise ValueError(problem)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(range(self.first_port, self.first_port + self.ports_per_target))

    @property
    def bridge(self) -> str:
        """The management bridge in the root namespace."""
        return f"{self.prefix}br"

    @property
    def bridge_address(self) -> str:
        return f"{MGMT_PREFIX}.{self.mgmt_net}.1"

    @property
    def fabric_ns(self) -> str:
        """The namespace holding the target-side bridge (the "switch")."""
        return f"{self.prefix}fabric"

    @property
    def config_file(self) -> Path:
        """Written first by `up`: marks the state dir as the lab's."""
        return self.state_dir / "lab.json"

    @property
    def inventory_file(self) -> Path:
        return self.state_dir / "inventory.yaml"

    @property
    def known_hosts_file(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def user_key_file(self) -> Path:
        return self.state_dir / "id_ed25519"

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["state_dir"] = str(self.state_dir)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabConfig:
        data = json.loads(text)
        data["state_dir"] = Path(data["state_dir"])
        return cls(**data)

    def hosts(self) -> list[LabHost]:
        """Every lab host, client and network node first."""
        mgmt = f"{MGMT_PREFIX}.{self.mgmt_net}"
        out = [
            LabHost(self, "client", ("client",), f"{mgmt}.10", f"{CLIENT_SUBNET}.2"),
            LabHost(self, "netnode", ("network_node",), f"{mgmt}.11", f"{TARGET_SUBNET}.1",
                    interfaces=("cl0", "tg0")),
        ]
        out += [LabHost(self, f"target{i}", ("target",), f"{mgmt}.{20 + i}",
                        f"{TARGET_SUBNET}.{10 + i}", iperf3_ports=self.ports)
                for i in range(1, self.targets + 1)]
        return out

    def namespaces(self) -> list[str]:
        return [h.netns for h in self.hosts()] + [self.fabric_ns]


@dataclass(frozen=True)
class LabHost:
    """One lab host: a namespace with a management link and its own sshd."""

    config: LabConfig = field(repr=False)
    name: str
    roles: tuple[Role, ...]
    mgmt_address: str
    data_address: str
    interfaces: tuple[str, ...] = ()
    iperf3_ports: tuple[int, ...] = ()

    @property
    def netns(self) -> str:
        return f"{self.config.prefix}{self.name}"

    @property
    def root_link(self) -> str:
        """Root-namespace end of the management veth (enslaved to the bridge)."""
        return f"{self.config.prefix}m-{self.name}"

    @property
    def dir(self) -> Path:
        """This host's sshd config, host key, pidfiles and logs."""
        return self.config.state_dir / "hosts" / self.name

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def sshd_pidfile(self) -> Path:
        return self.dir / "sshd.pid"

    def iperf3_pidfile(self, port: int) -> Path:
        return self.dir / f"iperf3-{port}.pid"
