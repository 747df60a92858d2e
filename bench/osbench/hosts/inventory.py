"""Host inventories: which machines a host scenario uses and how to reach them.

An inventory is a YAML file, validated like a scenario file (file:line
key.path, the bad value, did-you-mean):

    known_hosts: ~/.ssh/known_hosts   # default; relative paths are relative to this file
    host_key_policy: verify           # verify (default) | tofu: trust and record new keys
    hosts:
      bastion: {address: bastion.example.net, user: ops, roles: []}
      netnode:
        address: 10.0.0.5
        jump: bastion                 # reached through bastion's connection
        key_file: ~/.ssh/id_ed25519
        roles: [network_node]
        interfaces: [eth3]            # the interfaces whose queues a sweep changes
      client1: {address: 10.0.1.7, roles: [client], password_env: CLIENT1_PW}
      vm1: {address: 10.0.2.11, roles: [target], data_address: 192.0.2.11,
            iperf3_ports: [5201, 5202]}
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Literal

from osbench.scenario.schema import (
    Max,
    Min,
    NonEmpty,
    Pattern,
    convert,
    convert_dataclass,
    describe_value,
    did_you_mean,
)
from osbench.scenario.source import Source, load_file, load_text

Role = Literal["network_node", "client", "target"]
HostKeyPolicy = Literal["verify", "tofu"]

_Port = Annotated[int, Min(1), Max(65535)]
_EnvName = Annotated[str, Pattern(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")]
_Text = Annotated[str, NonEmpty()]

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass(frozen=True)
class HostSpec:
    """One host of an inventory; `name` is its key under `hosts:`."""

    name: str
    address: _Text
    port: _Port = 22
    user: _Text = "root"
    #: Private key file; without it, the SSH agent and ~/.ssh's default keys are tried.
    key_file: str | None = None
    #: Name of the environment variable that holds the password (never the password).
    password_env: _EnvName | None = None
    #: Name of another host of the inventory to reach this one through.
    jump: str | None = None
    roles: tuple[Role, ...] = ()
    #: Network node only: the interfaces whose channel (queue) counts a sweep sets.
    interfaces: tuple[_Text, ...] = ()
    #: Address traffic generators aim at on this host (default: `address`).
    data_address: str | None = None
    #: Ports of the iperf3 servers running on this host, one per stream.
    iperf3_ports: tuple[_Port, ...] = ()

    @property
    def traffic_address(self) -> str:
        """Where traffic to this host goes: `data_address`, else `address`."""
        return self.data_address or self.address


@dataclass(frozen=True)
class Inventory:
    """A validated inventory file."""

    hosts: dict[str, HostSpec]
    known_hosts: str | None
    host_key_policy: HostKeyPolicy = "verify"
    file: str = "<inventory>"

    def by_role(self, role: Role) -> list[HostSpec]:
        """The hosts that have `role`, in file order."""
        return [h for h in self.hosts.values() if role in h.roles]


@dataclass(frozen=True)
class _Top:
    """The top-level keys but `hosts`, which is checked entry by entry."""

    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = "verify"


_TOP_KEYS = ("hosts", "known_hosts", "host_key_policy")
_HOST_KEYS = tuple(f.name for f in fields(HostSpec) if f.name != "name")


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file; mistakes raise ScenarioError."""
    return parse_inventory(load_file(path))


def parse_inventory_text(text: str, file: str = "<inventory>") -> Inventory:
    """Validate inventory YAML given as text (`file` names it in errors)."""
    return parse_inventory(load_text(text, file))


def parse_inventory(src: Source) -> Inventory:
    """Validate a loaded inventory document."""
    data = src.data
    if not isinstance(data, dict):
        raise src.error((), f"expected a mapping with `hosts:`, got {describe_value(data)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise src.error((key,), f"unknown key {key!r}", hint=did_you_mean(key, _TOP_KEYS))
    if "hosts" not in data:
        raise src.error((), "missing required key 'hosts'",
                        hint="add `hosts:` (a mapping of host name to its settings)")
    entries = data["hosts"]
    if not isinstance(entries, dict) or not entries:
        raise src.error(("hosts",), f"expected a non-empty mapping of host name to its "
                                    f"settings, got {describe_value(data['hosts'])}")
    top = convert_dataclass(src, {k: v for k, v in data.items() if k != "hosts"}, _Top, ())
    base = Path(src.file).parent
    hosts: dict[str, HostSpec] = {}
    for name, entry in entries.items():
        path = ("hosts", name)
        convert(src, name, Annotated[str, Pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]*",
                                                  "letters, digits, '.', '_' or '-'")], path)
        if entry is None or not isinstance(entry, dict):
            raise src.error(path, f"expected a mapping with at least `address:`, "
                                  f"got {describe_value(entry)}")
        for key in entry:
            if key == "name":
                raise src.error((*path, key), "unknown key 'name'",
                                hint=f"a host's name is its key under hosts: ({name!r})")
            if key not in _HOST_KEYS:
                raise src.error((*path, key), f"unknown key {key!r}",
                                hint=did_you_mean(key, _HOST_KEYS))
        spec = convert_dataclass(src, {"name": name, **entry}, HostSpec, path)
        if spec.key_file is not None:
            spec = replace(spec, key_file=_resolve(base, spec.key_file))
        hosts[name] = spec
    for name, spec in hosts.items():
        _check_jump(src, hosts, name, spec)
    known_hosts = _resolve(base, top.known_hosts or DEFAULT_KNOWN_HOSTS)
    return Inventory(hosts=hosts, known_hosts=known_hosts,
                     host_key_policy=top.host_key_policy, file=src.file)


def _check_jump(src: Source, hosts: dict[str, HostSpec], name: str, spec: HostSpec) -> None:
    if spec.jump is None:
        return
    path = ("hosts", name, "jump")
    if spec.jump not in hosts:
        raise src.error(path, f"unknown jump host {spec.jump!r}",
                        hint=did_you_mean(spec.jump, [h for h in hosts if h != name]))
    seen = [name]
    hop: str | None = spec.jump
    while hop is not None:
        if hop in seen:
            chain = " -> ".join([*seen, hop])
            raise src.error(path, f"jump hosts form a loop: {chain}",
                            hint="the last host of a jump chain must be reachable directly")
        seen.append(hop)
        hop = hosts[hop].jump


def _resolve(base: Path, path: str) -> str:
    """`~` expanded; a relative path taken from the inventory file's folder."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)

