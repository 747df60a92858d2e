"""What an instance's security groups say about one vantage point: which ports are
open to it, and which of the probed ports are closed.

Pure. Neutron's model: a port's ingress is dropped unless an ingress rule of one
of its groups allows it; a rule allows a protocol (any when unset), a port range
(all when unset) and a source: `remote_ip_prefix` (any when unset as well as
`remote_group_id`), or `remote_group_id`, which allows only the group's members
(never the harness, so such a rule opens nothing to the vantage). A port with
port security off has no filter at all: every port is open.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from osbench.kinds.audit.probe import Protocol, Want

#: Protocols the probe speaks; ICMP and the rest are read but not probed.
PROBED = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp"}

Range = tuple[int, int]


@dataclass(frozen=True)
class Expected:
    """Ranges open to the vantage, per probed protocol, and the rules behind them."""

    tcp: tuple[Range, ...] = ()
    udp: tuple[Range, ...] = ()
    #: Rule ids that open something to the vantage.
    rules: tuple[str, ...] = ()
    #: Why some rules open nothing here (e.g. remote_group_id), for the report.
    notes: tuple[str, ...] = field(default=(), compare=False)

    def is_open(self, protocol: str, port: int) -> bool:
        ranges = self.tcp if protocol == "tcp" else self.udp
        return any(low <= port <= high for low, high in ranges)


ALL_OPEN = Expected(tcp=((1, 65535),), udp=((1, 65535),), rules=("port_security_disabled",))


def _merge(ranges: Iterable[Range]) -> tuple[Range, ...]:
    out: list[Range] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return tuple(out)


def expected(rules: Iterable[Mapping[str, Any]], address: str,
             vantage: str | None) -> Expected:
    """What `rules` (every rule of the port's groups) open on `address` to `vantage`
    (an address; None: any source, as the Internet would be)."""
    family = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    source = ipaddress.ip_address(vantage) if vantage else None
    opened: dict[str, list[Range]] = {"tcp": [], "udp": []}
    ids: list[str] = []
    notes: list[str] = []
    for rule in rules:
        if rule.get("direction") != "ingress" or (rule.get("ethertype") or "IPv4") != family:
            continue
        if rule.get("remote_group_id"):
            notes.append(f"rule {rule.get('id')} allows only members of group "
                         f"{rule['remote_group_id']}: not the vantage")
            continue
        prefix = rule.get("remote_ip_prefix")
        if prefix and source is not None:
            network = ipaddress.ip_network(str(prefix), strict=False)
            if source.version != network.version or source not in network:
                continue
        protocol = rule.get("protocol")
        protocols = ["tcp", "udp"] if protocol in (None, "", "any") else (
            [PROBED[str(protocol).lower()]] if str(protocol).lower() in PROBED else [])
        low, high = rule.get("port_range_min"), rule.get("port_range_max")
        span = (1, 65535) if low is None else (int(low), int(high if high is not None else low))
        for name in protocols:
            opened[name].append(span)
        if protocols:
            ids.append(str(rule.get("id")))
    return Expected(tcp=_merge(opened["tcp"]), udp=_merge(opened["udp"]), rules=tuple(ids),
                    notes=tuple(notes))


def sample_range(low: int, high: int, count: int) -> list[int]:
    """Up to `count` ports of [low, high]: both ends and evenly between."""
    if high - low + 1 <= count:
        return list(range(low, high + 1))
    if count == 1:
        return [low]
    step = (high - low) / (count - 1)
    return sorted({round(low + i * step) for i in range(count)})


def probe_ports(exp: Expected, closed_sample: Sequence[int],
                per_range: int) -> list[tuple[Protocol, int, Want]]:
    """(protocol, port, expected) to probe: a sample of every open range, the closed
    sample, and the port above each open TCP range (where a filter's edge is)."""
    out: dict[tuple[Protocol, int], Want] = {}
    pairs: tuple[tuple[Protocol, tuple[Range, ...]], ...] = (("tcp", exp.tcp), ("udp", exp.udp))
    for protocol, ranges in pairs:
        for low, high in ranges:
            for port in sample_range(low, high, per_range):
                out[(protocol, port)] = "open"
    edges = [high + 1 for _, high in exp.tcp if high < 65535]
    for port in [*closed_sample, *edges]:
        key: tuple[Protocol, int] = ("tcp", port)
        if key not in out:
            out[key] = "open" if exp.is_open("tcp", port) else "closed"
    return [(protocol, port, want) for (protocol, port), want in sorted(out.items())]
