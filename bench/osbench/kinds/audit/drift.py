"""Version drift within a role: every package, kernel or config file whose value on
some host differs from the value most hosts of the role have.

Pure: from the hosts' facts and the roles to drift rows. A package missing on
a host where the rest of its role has it is drift too (value "(absent)").
Hosts that did not answer take no part in a majority; they are listed apart.
When no value has more hosts than every other (a tie), the role has no
majority for that item and every host is listed with its value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from osbench.kinds.audit.versions import HostFacts

ABSENT = "(absent)"
NO_MAJORITY = "(no majority)"

ItemType = str  # "package" | "kernel" | "config"


@dataclass(frozen=True)
class Drift:
    """One host whose value of one item differs from its role's majority."""

    role: str
    item_type: ItemType
    item: str
    majority: str
    majority_hosts: int
    role_hosts: int
    host: str
    value: str

    def row(self) -> dict[str, object]:
        return {"role": self.role, "item_type": self.item_type, "item": self.item,
                "majority": self.majority, "majority_hosts": self.majority_hosts,
                "role_hosts": self.role_hosts, "host": self.host, "value": self.value}


def values(facts: HostFacts) -> dict[tuple[ItemType, str], str]:
    """Every item of one host: (type, name) -> value."""
    out: dict[tuple[ItemType, str], str] = {("kernel", "kernel"): facts.kernel or ""}
    out.update({("package", name): version for name, version in facts.packages.items()})
    out.update({("config", path): digest for path, digest in facts.configs.items()})
    return out


def role_drift(role: str, facts: Sequence[HostFacts]) -> list[Drift]:
    """The drift rows of one role (answering hosts only), sorted by item then host."""
    answered = [f for f in facts if f.answered]
    if len(answered) < 2:
        return []
    per_host = {f.host: values(f) for f in answered}
    items = sorted({item for v in per_host.values() for item in v})
    out: list[Drift] = []
    for item in items:
        seen = {host: v.get(item, ABSENT) for host, v in per_host.items()}
        counts = Counter(seen.values()).most_common()
        if len(counts) == 1:
            continue
        top, top_n = counts[0]
        tie = counts[1][1] == top_n
        majority = NO_MAJORITY if tie else top
        for host, value in sorted(seen.items()):
            if tie or value != top:
                out.append(Drift(role, item[0], item[1], majority, 0 if tie else top_n,
                                 len(answered), host, value))
    return out


def all_drift(roles: Mapping[str, Sequence[str]], facts: Iterable[HostFacts]) -> list[Drift]:
    """Drift rows of every role, in role order."""
    by_host = {f.host: f for f in facts}
    return [d for role, hosts in roles.items()
            for d in role_drift(role, [by_host[h] for h in hosts if h in by_host])]


def summary(drift: Sequence[Drift]) -> dict[str, int]:
    """drifted_packages / _configs: distinct names; drifted_hosts: distinct odd hosts."""
    return {
        "drifted_packages": len({d.item for d in drift if d.item_type == "package"}),
        "drifted_configs": len({d.item for d in drift if d.item_type == "config"}),
        "drifted_kernels": len({d.role for d in drift if d.item_type == "kernel"}),
        "drifted_hosts": len({d.host for d in drift}),
    }
