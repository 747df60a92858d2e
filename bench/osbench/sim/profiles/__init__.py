"""Named parameter sets for the simulated cloud, loaded from YAML.

A profile says how big the control-plane "pet" VMs are, what each step of an
instance build costs, how Neutron's DHCP agent runs its privileged commands,
how Nova treats vif plugging, how guests boot, and the quotas. The shipped
profiles (`bench/osbench/sim/profiles/*.yaml`) reproduce the field notes' findings;
`osbench sim profiles` lists them. Every key is documented in
`bench/osbench/sim/profiles/README.md`; unknown keys are rejected with a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from osbench.errors import UserError

PROFILE_PACKAGE = __name__
DEFAULT_PROFILE = "healthy"
#: Top-level keys that change no modelled outcome (labels, and the clock's speed).
UNMODELLED_KEYS = ("name", "description", "calibration", "time_scale")


@dataclass(frozen=True)
class ControlPlane:
    """The Nova/Neutron service VMs ("pets") and the build work they do."""

    cores: int = 16
    memory_gb: float = 16.0
    #: Memory the services need before they swap; below it builds slow down.
    working_set_gb: float = 10.0
    #: Service-time multiplier per missing fraction of the working set.
    swap_slowdown: float = 5.1
    #: Control-plane CPU seconds to schedule and set up one instance.
    build_cpu_s: float = 1.5
    #: Relative spread (lognormal sigma) of one build's service time.
    build_jitter: float = 0.1
    #: oslo.messaging rpc_response_timeout: a build waiting longer fails.
    rpc_timeout_s: float = 60.0


@dataclass(frozen=True)
class NovaApi:
    """nova-api request costs and the reverse proxy in front of it."""

    request_s: float = 0.05
    per_instance_s: float = 0.1
    proxy_timeout_s: float = 60.0


@dataclass(frozen=True)
class Neutron:
    """neutron-server and the DHCP agent that provisions every port."""

    #: Label only: direct, rootwrap or daemon (shown in console logs and describe()).
    root_helper: str = "daemon"
    #: Cost of one privileged call (`ip netns exec ... ip route list`).
    privileged_call_s: float = 0.048
    #: Agent notifications per port (create, binding update, status update);
    #: each rewrites the host file and runs one privileged call.
    dhcp_updates_per_port: int = 3
    host_file_rewrite_s: float = 0.01
    #: Extra rewrite cost per entry already in the network's host file.
    host_file_entry_s: float = 0.00002
    port_create_s: float = 0.2
    port_bind_s: float = 1.0
    port_quota: int = 5000


@dataclass(frozen=True)
class Compute:
    """nova-compute: disk preparation, vif plugging policy, spawn."""

    hosts: int = 40
    disk_prep_median_s: float = 75.0
    disk_prep_sigma: float = 0.15
    vif_plugging_is_fatal: bool = True
    #: 0 means Nova does not wait for network-vif-plugged at all.
    vif_plugging_timeout_s: float = 300.0
    spawn_s: float = 3.0


@dataclass(frozen=True)
class Guest:
    """What happens inside a booted guest."""

    boot_to_dhcp_median_s: float = 10.0
    boot_to_dhcp_sigma: float = 0.15
    #: dhclient's `timeout` (300 s by default) before it gives up.
    dhcp_timeout_s: float = 300.0
    #: DHCP retransmit interval: a lease arrives this long after the port is ready.
    dhcp_retry_s: float = 3.0
    cloud_init_median_s: float = 15.0
    cloud_init_sigma: float = 0.3
    #: Share of guests that reach 127.0.0.1 URLs over IPv6 ([::1]) instead.
    ipv6_share: float = 0.0
    cloud_init_version: str = "24.1.3"


@dataclass(frozen=True)
class Keystone:
    token_ttl_s: float = 3600.0


@dataclass(frozen=True)
class Quotas:
    instances: int = 2000
    cores: int = 4000
    ram_mb: int = 4096000


SECTIONS: dict[str, type] = {
    "control_plane": ControlPlane,
    "nova_api": NovaApi,
    "neutron": Neutron,
    "compute": Compute,
    "guest": Guest,
    "keystone": Keystone,
    "quotas": Quotas,
}


@dataclass(frozen=True)
class Profile:
    """One complete parameter set; all durations in modelled seconds."""

    name: str
    description: str
    #: What the parameters were fitted to, e.g. "the field notes" ("" = nothing:
    #: a profile of one's own). Recorded with every run; the report's provenance
    #: quotes it, so a simulated figure says where its parameters came from.
    calibration: str = ""
    time_scale: float = 20.0
    control_plane: ControlPlane = field(default_factory=ControlPlane)
    nova_api: NovaApi = field(default_factory=NovaApi)
    neutron: Neutron = field(default_factory=Neutron)
    compute: Compute = field(default_factory=Compute)
    guest: Guest = field(default_factory=Guest)
    keystone: Keystone = field(default_factory=Keystone)
    quotas: Quotas = field(default_factory=Quotas)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form, as recorded in results (describe())."""
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: dict[str, Any]) -> Profile:
        """A copy with dotted keys replaced, e.g. {"keystone.token_ttl_s": 30}.

        A calibrated profile with a modelled parameter replaced is no longer what
        was calibrated; its `calibration` then names the replaced keys."""
        data = self.as_dict()
        changed = sorted(k for k in overrides if k not in UNMODELLED_KEYS)
        if self.calibration and changed and "calibration" not in overrides:
            data["calibration"] = f"{self.calibration}, then {', '.join(changed)} changed"
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            if key:
                data.setdefault(section, {})[key] = value
            else:
                data[section] = value
        return profile_from_dict(data, source=f"overrides of {self.name}")


def _suggest(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise UserError(f"{where}: expected {kind.__name__}, got {value!r}")


def _section(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping, got {raw!r}")
    types = {f.name: f.type for f in fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in types:
            raise UserError(
                f"{where}: unknown key {key!r}", hint=_suggest(str(key), list(types))
            )
        kind = {"int": int, "float": float, "str": str, "bool": bool}[str(types[key])]
        kwargs[key] = _coerce(value, kind, f"{where}.{key}")
    return cls(**kwargs)


def profile_from_dict(data: dict[str, Any], *, source: str) -> Profile:
    """Validate a profile mapping (as read from YAML) into a Profile."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: a profile must be a mapping, got {data!r}")
    known = ["name", "description", "calibration", "time_scale", *SECTIONS]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            kwargs[key] = _section(SECTIONS[key], value, f"{source}: {key}")
        elif key in ("name", "description", "calibration"):
            kwargs[key] = _coerce(value, str, f"{source}: {key}")
        elif key == "time_scale":
            kwargs[key] = _coerce(value, float, f"{source}: {key}")
            if kwargs[key] <= 0:
                raise UserError(f"{source}: time_scale must be > 0, got {value!r}")
        else:
            raise UserError(f"{source}: unknown key {key!r}", hint=_suggest(str(key), known))
    for required in ("name", "description"):
        if required not in kwargs:
            raise UserError(f"{source}: missing key {required!r}")
    return Profile(**kwargs)


def _profile_files() -> dict[str, Any]:
    folder = resources.files(PROFILE_PACKAGE)
    return {
        entry.name.removesuffix(".yaml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def list_profiles() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped profile, sorted by name."""
    return sorted((name, load_profile(name).description) for name in _profile_files())


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or a profile YAML file by path."""
    text_source = str(name_or_path)
    files = _profile_files()
    if isinstance(name_or_path, str) and name_or_path in files:
        text = files[name_or_path].read_text(encoding="utf-8")
    elif Path(text_source).suffix in (".yaml", ".yml") and Path(text_source).is_file():
        text = Path(text_source).read_text(encoding="utf-8")
    else:
        raise UserError(
            f"unknown simulator profile {text_source!r}; known: {', '.join(sorted(files))}",
            hint=_suggest(text_source, list(files)) or "run `osbench sim profiles` to list them",
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{text_source}: not valid YAML: {exc}") from exc
    return profile_from_dict(data, source=text_source)
