"""The audit kind's parameters: the schema, with light imports only.

    params:
      checks: [versions, firewall]
      versions:
        inventory: hosts.yaml          # default: the local lab's
        roles: {hypervisors: [cmp1, cmp2, cmp3], network: [net1, net2]}
        packages: ["nova*", "neutron*"]
        config_files: [/etc/neutron/neutron.conf]
      firewall:
        name_prefix: web-              # or project: ID, or tag: TAG (at least one)
        closed_sample: [22, 3306, 5432]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from osbench.scenario.schema import Max, Min, NonEmpty, Pattern, PositiveDuration

if TYPE_CHECKING:
    from osbench.kinds.base import TargetKind

Check = Literal["versions", "firewall"]
CHECKS: tuple[Check, ...] = ("versions", "firewall")

#: The packages of the field team's upgrade incident, and what moves with them.
DEFAULT_PACKAGES = ("nova*", "neutron*", "openvswitch*", "linux-image*", "qemu*", "libvirt*",
                    "python3-oslo*")
#: The usual exposures: ssh, MySQL, PostgreSQL, Redis, Elasticsearch, memcached, MongoDB.
DEFAULT_CLOSED_SAMPLE = (22, 3306, 5432, 6379, 9200, 11211, 27017)

_Port = Annotated[int, Min(1), Max(65535)]
_Glob = Annotated[str, Pattern(r"[A-Za-z0-9.+_*?\[\]-]+", "a package name or glob "
                                                           "(letters, digits, . + - _ * ? [ ])")]
_AbsPath = Annotated[str, Pattern(r"/[^\s'\"`$\\;|&<>]*", "an absolute path without spaces, "
                                                           "quotes or shell characters")]
_Name = Annotated[str, NonEmpty()]


@dataclass(frozen=True)
class VersionsParams:
    """Version drift across the hosts of an inventory."""

    #: Host inventory (default: the run's --hosts FILE, else the running local lab's).
    inventory: str | None = None
    #: Role name -> hosts of the inventory. Default: each inventory role, and
    #: hosts without one in `all`. Drift is judged within a role only.
    roles: dict[str, tuple[_Name, ...]] = field(default_factory=dict)
    packages: tuple[_Glob, ...] = DEFAULT_PACKAGES
    #: Config files whose sha256 is compared (a missing file is a value too).
    config_files: tuple[_AbsPath, ...] = ()
    #: The one command per host: past this it is killed and the host recorded
    #: as not answering.
    timeout_s: Annotated[float, Min(0, exclusive=True), Max(600)] = 30.0


@dataclass(frozen=True)
class BootProbes:
    """The audit's own probe instances: one per enabled hypervisor (admin only),
    deleted when the case ends."""

    #: Default on the simulated cloud: its image, flavor and network.
    image: str | None = None
    flavor: str | None = None
    network: str | None = None
    security_groups: tuple[_Name, ...] = ("default",)
    #: A cloud with more hypervisors than this is refused rather than flooded.
    max_instances: Annotated[int, Min(1), Max(1000)] = 50
    timeout_s: PositiveDuration = 600.0
    poll_interval_s: PositiveDuration = 5.0


@dataclass(frozen=True)
class FirewallParams:
    """Security-group enforcement of running instances, probed for real."""

    #: Scope: the instances of this project (admin: all_tenants), whose name
    #: starts with `name_prefix`, or that carry `tag` (all that are given).
    project: str | None = None
    name_prefix: Annotated[str, NonEmpty()] | None = None
    tag: Annotated[str, NonEmpty()] | None = None
    #: Ports probed that the rules close (plus one above every open range).
    closed_sample: tuple[_Port, ...] = DEFAULT_CLOSED_SAMPLE
    #: False: the API side only, nothing probed (e.g. a simulated cloud served
    #: like a real one, whose instances' addresses are only its model's).
    probe: bool = True
    #: Where probes start: `harness` (this machine), `netns:NAME` (a network
    #: namespace of this machine) or `host:NAME` (a host of `inventory`, over SSH).
    vantage: Annotated[str, Pattern(r"harness|netns:[A-Za-z0-9_.-]+|host:[A-Za-z0-9_.-]+",
                                    "harness, netns:NAME or host:NAME")] = "harness"
    #: For `host:NAME`: the inventory (default: --hosts FILE, else the local lab's),
    #: and the Python there that runs the probe helper (stdlib only; default python3).
    inventory: str | None = None
    python: str | None = None
    #: Address the rules are judged for (whose remote prefixes must match);
    #: default: the source address the vantage's route to each instance uses.
    vantage_address: str | None = None
    #: Bounds: probes in all, probes started per second, in flight, each
    #: connect's timeout, and the whole probe phase's time.
    max_probes: Annotated[int, Min(1), Max(20000)] = 2000
    rate_per_s: Annotated[float, Min(0, exclusive=True), Max(2000)] = 200.0
    concurrency: Annotated[int, Min(1), Max(256)] = 32
    connect_timeout_s: Annotated[float, Min(0, exclusive=True), Max(30)] = 1.0
    budget_s: PositiveDuration = 300.0
    #: Ports of an open range probed at most (its ends and evenly between).
    per_range: Annotated[int, Min(1), Max(64)] = 4
    #: Instead of a scope: boot one probe instance per hypervisor, audit them,
    #: delete them.
    boot: BootProbes | None = None

    def __post_init__(self) -> None:
        scoped = bool(self.project or self.name_prefix or self.tag)
        if self.boot is not None and scoped:
            raise ValueError("boot scopes the audit to its own probe instances; remove "
                             "project, name_prefix and tag, or boot")
        if self.boot is None and not scoped:
            raise ValueError("the scope is empty; set project, name_prefix or tag, or boot "
                             "(the audit probes only instances in its scope)")


@dataclass(frozen=True)
class AuditParams:
    #: Which checks run; each is optional.
    checks: tuple[Check, ...] = CHECKS
    versions: VersionsParams = field(default_factory=VersionsParams)
    firewall: FirewallParams | None = None

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError("checks is empty; name at least one of: " + ", ".join(CHECKS))
        if len(set(self.checks)) != len(self.checks):
            raise ValueError(f"checks lists a check twice: {list(self.checks)!r}")
        if "firewall" in self.checks and self.firewall is None:
            raise ValueError("checks names firewall but `firewall:` is not set; add "
                             "`firewall: {name_prefix: ...}` (or project, or tag)")


def target_of(p: AuditParams) -> TargetKind:
    """A cloud when the firewall check runs (it reads the API); else no cloud is
    opened: this machine when `versions.inventory` names the hosts, the hosts of
    --hosts (default the local lab) when it does not."""
    if "firewall" in p.checks:
        return "cloud"
    return "local" if p.versions.inventory is not None else "hosts"
