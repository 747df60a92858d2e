"""The field notes' boot findings as shapes, judged on the model over many seeds.

A field figure ("4 to 7 of 100 did not start") is what one operator saw on their
cloud; what the simulated cloud must reproduce is its shape ("small pets lose a
few, big pets none"). Each `Finding` names its seed-replay scenario, and its `sla`
is that scenario's SLA word for word (tests/sim/test_findings.py checks both).

Here the SLA is judged against the counts the model plans for one seed
(`model_metrics`: the boot kind's metrics, without HTTP), so a shape is checked
over hundreds of seeds in seconds (`seed_distribution`), and with one parameter
moved a few per cent (`sensitivity`). `markdown_tables` renders both as the tables
of bench/osbench/sim/profiles/README.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from osbench.scenario.sla import OPERATORS, Criterion, parse
from osbench.sim.model import BatchPlan, plan_once
from osbench.sim.profiles import Profile, load_profile

#: Nova's fault text for a port not ACTIVE within vif_plugging_timeout, as the
#: boot kind matches it.
VIF_FAILURE = "Failed to allocate the network(s)"

Metrics = dict[str, float]

#: The boot kind's metrics that `model_metrics` computes (every one of them).
METRICS = ("requested", "ok", "error", "no_phone_home", "not_created", "build_timeout",
           "not_started", "dhcp_timeout", "vif_failures", "silent_dhcp_timeout_pct",
           "error_vif_pct", "phone_home_ok_pct", "active_pct", "create_errors")


def model_metrics(profile: Profile, plan: BatchPlan) -> Metrics:
    """The boot kind's metrics of one create request, read off the model's plan.

    What the harness would count through the API (each instance's one outcome,
    the silent ones' consoles, the ERROR ones' faults, the create's 504) if every
    planned event were observed; tests/boot/test_seed_replay.py checks that it is."""
    tls = plan.timelines
    n = len(tls)
    ok = sum(t.phone_home_at is not None for t in tls)
    error = sum(t.failed_at is not None for t in tls)
    silent = [t for t in tls if t.failed_at is None and t.phone_home_at is None]
    dhcp_timeout = sum(t.dhcp_gave_up_at is not None for t in silent)
    vif = sum(t.fault is not None and VIF_FAILURE in t.fault.message for t in tls)
    active = sum(t.active_at is not None for t in tls)
    return {
        "requested": float(n), "ok": float(ok), "error": float(error),
        "no_phone_home": float(len(silent)), "not_created": 0.0, "build_timeout": 0.0,
        "not_started": float(n - ok), "dhcp_timeout": float(dhcp_timeout),
        "vif_failures": float(vif),
        "silent_dhcp_timeout_pct": _pct(dhcp_timeout, len(silent)),
        "error_vif_pct": _pct(vif, error),
        "phone_home_ok_pct": _pct(ok, n),
        "active_pct": _pct(active, n),
        "create_errors": float(plan.api_seconds > profile.nova_api.proxy_timeout_s),
    }


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else math.nan


@dataclass(frozen=True)
class Finding:
    """One finding of the field notes, as the shape its seed-replay scenario checks."""

    number: str
    #: The field's own figure, quoted (what one operator saw, not what must recur).
    field: str
    #: The shape the simulated cloud must show for (nearly) every seed.
    shape: str
    scenario: str  # file name in scenarios/seed-replay/
    profile: str
    counts: tuple[int, ...]
    sla: tuple[str, ...]
    #: The count whose spread over seeds is reported.
    measure: str

    def criteria(self) -> list[Criterion]:
        names = dict.fromkeys(METRICS, "")
        return [parse(text, metrics=names, columns={}) for text in self.sla]

    def holds(self, metrics: Mapping[str, float]) -> bool:
        """Whether every SLA criterion passes on these metrics (NaN never passes)."""
        return all(_passes(c, metrics) for c in self.criteria())


def _passes(criterion: Criterion, metrics: Mapping[str, float]) -> bool:
    value = metrics.get(criterion.metric, math.nan)
    return not math.isnan(value) and OPERATORS[criterion.op](value, criterion.threshold)


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "1", "every run, 4 to 7 of 100 did not start (4-core / 8 GB pets)",
        "small pets lose a few: at least 1, at most 10 % of the count",
        "01-small-pets-100.yaml", "small-pets", (100,),
        ("not_started >= 1", "phone_home_ok_pct >= 90"), "not_started"),
    Finding(
        "1 (fix)", "16-core / 16 GB pets fixed 100",
        "big pets lose none",
        "02-big-pets-100.yaml", "big-pets", (100,),
        ("phone_home_ok_pct == 100",), "not_started"),
    Finding(
        "2", "200: all ACTIVE, 8 to 20 never phoned home; consoles show DHCP giving up",
        "all ACTIVE; a minority silent (at least 1, under half), and every silent "
        "console shows the DHCP client giving up",
        "03-big-pets-200.yaml", "big-pets", (200,),
        ("active_pct == 100", "no_phone_home >= 1", "phone_home_ok_pct > 50",
         "silent_dhcp_timeout_pct == 100"), "no_phone_home"),
    Finding(
        "3", "vif_plugging_is_fatal: the same instances went to ERROR instead",
        "a minority goes to ERROR with Nova's network allocation fault; none boots "
        "without an address",
        "04-vif-fatal-200.yaml", "vif-fatal", (200,),
        ("error >= 1", "error_vif_pct == 100", "phone_home_ok_pct > 50", "no_phone_home == 0"),
        "error"),
    Finding(
        "5", "with the rootwrap daemon, 200 and 400 all started",
        "the daemon makes every instance start; no 504 below 1000",
        "05-rootwrap-daemon.yaml", "rootwrap-daemon", (200, 400),
        ("phone_home_ok_pct == 100", "create_errors == 0"), "not_started"),
    Finding(
        "5, 6", "1000 all started, but the create got HTTP 504 from the proxy",
        "every instance starts, and the one create request gets a 504",
        "06-rootwrap-daemon-1000.yaml", "rootwrap-daemon", (1000,),
        ("create_errors == 1", "phone_home_ok_pct == 100"), "not_started"),
)


@dataclass(frozen=True)
class Spread:
    """One count over many seeds, and the share of seeds whose shape held."""

    values: tuple[int, ...]
    held: int

    @property
    def seeds(self) -> int:
        return len(self.values)

    @property
    def held_pct(self) -> float:
        return 100.0 * self.held / self.seeds if self.seeds else math.nan

    def quantile(self, q: float) -> int:
        """Nearest-rank quantile (a count that occurred), q in [0, 1]."""
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def summary(self) -> tuple[int, int, int, int, int]:
        """min, p1, median, p99, max."""
        return (min(self.values), self.quantile(0.01), self.quantile(0.5),
                self.quantile(0.99), max(self.values))

    def histogram(self) -> dict[int, int]:
        return {v: self.values.count(v) for v in sorted(set(self.values))}


def seed_distribution(finding: Finding, count: int, seeds: Iterable[int],
                      profile: Profile | None = None) -> Spread:
    """`finding.measure` at `count` for each seed, and how many seeds the SLA held for."""
    profile = profile or load_profile(finding.profile)
    values, held = [], 0
    for seed in seeds:
        metrics = model_metrics(profile, plan_once(profile, seed, count))
        values.append(int(metrics[finding.measure]))
        held += finding.holds(metrics)
    return Spread(tuple(values), held)


def scaled(profile: Profile, key: str, factor: float) -> Profile:
    """`profile` with the dotted float parameter `key` multiplied by `factor`."""
    section, _, name = key.partition(".")
    value = getattr(getattr(profile, section), name)
    return profile.with_overrides({key: value * factor})


def sensitivity(key: str, factor: float, seeds: Sequence[int]) -> dict[tuple[str, int], Spread]:
    """Every finding at every count with parameter `key` scaled by `factor`."""
    return {
        (f.number, count): seed_distribution(f, count, seeds,
                                             scaled(load_profile(f.profile), key, factor))
        for f in FINDINGS for count in f.counts
    }


#: Parameters fitted so the model reproduces the field's figures (see the README).
CALIBRATED = (
    "control_plane.working_set_gb", "control_plane.swap_slowdown", "control_plane.build_cpu_s",
    "control_plane.build_jitter", "nova_api.request_s", "nova_api.per_instance_s",
    "neutron.host_file_rewrite_s", "neutron.host_file_entry_s", "neutron.port_create_s",
    "neutron.port_bind_s", "compute.disk_prep_median_s", "compute.disk_prep_sigma",
    "compute.spawn_s", "guest.boot_to_dhcp_median_s", "guest.boot_to_dhcp_sigma",
)
#: Measured or upstream defaults, moved only to show how near a cliff a finding is.
PHYSICAL = (
    "neutron.privileged_call_s", "control_plane.rpc_timeout_s", "guest.dhcp_timeout_s",
    "compute.vif_plugging_timeout_s", "nova_api.proxy_timeout_s",
)


def _columns() -> list[tuple[Finding, int]]:
    return [(f, count) for f in FINDINGS for count in f.counts]


def distribution_table(seeds: Sequence[int]) -> str:
    """Markdown: each finding's count over `seeds` (min, p1, median, p99, max)."""
    lines = [f"| finding | profile, count | shape (the SLA) | count over {len(seeds)} seeds: "
             "min / p1 / median / p99 / max | SLA held |", "|---|---|---|---|---|"]
    for finding, count in _columns():
        spread = seed_distribution(finding, count, seeds)
        summary = " / ".join(str(v) for v in spread.summary())
        lines.append(f"| {finding.number} | {finding.profile}, {count} | "
                     f"`{'`, `'.join(finding.sla)}` | {finding.measure}: {summary} | "
                     f"{spread.held_pct:.1f} % |")
    return "\n".join(lines)


def sensitivity_table(keys: Sequence[str], factors: Sequence[float], seeds: Sequence[int],
                      progress: Callable[[str], None] | None = None) -> str:
    """Markdown: per parameter and factor, each finding's count range over `seeds`;
    a cell whose SLA held for fewer than 99 % of them is in bold with the share."""
    columns = _columns()
    head = [f"{f.number}: {f.measure} @ {count}" for f, count in columns]
    lines = ["| parameter | x | " + " | ".join(head) + " |",
             "|---|---|" + "---|" * len(head)]
    for key in keys:
        for factor in factors:
            if progress:
                progress(f"{key} x{factor:g}")
            spreads = sensitivity(key, factor, seeds)
            cells = []
            for finding, count in columns:
                s = spreads[(finding.number, count)]
                cell = f"{min(s.values)}-{max(s.values)}"
                cells.append(cell if s.held_pct >= 99 else f"**{cell} ({s.held_pct:.0f} %)**")
            lines.append(f"| `{key}` | {factor:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
