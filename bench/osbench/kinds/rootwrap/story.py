"""The rootwrap kind's chapter of the field-notes story (finding 4), and the ratio
sentence and judgement finding 5 also tells.

The field notes measured 0.713 s through neutron-rootwrap against 0.048 s direct
(about 15x), and ~0.05 s through the daemon. Their shape, judged here on each
series' medians: rootwrap's start-up dominates the call (at least ROOTWRAP_DOMINATES
times direct), and the daemon brings it near direct (at most NEAR_DIRECT times).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from osbench.kinds.rootwrap import report
from osbench.report.model import Table
from osbench.report.story import Chapter, Judgement, Told, counted, of_kind, renamed
from osbench.report.style import FigureOptions
from osbench.results import Run

#: Rootwrap's median at least this many times direct: its start-up dominates the
#: call (the field notes: 14.9x; a fast machine's python start-up gives more).
ROOTWRAP_DOMINATES = 5.0
#: The daemon's median at most this many times direct is "near direct" (the field
#: notes: ~0.05 s against 0.048 s).
NEAR_DIRECT = 3.0


@dataclass(frozen=True)
class Ratio:
    """One series' median call, direct and through `mode`, from the ratio table."""

    series: str
    mode: str
    direct_ms: float
    mode_ms: float

    @property
    def ratio(self) -> float:
        return self.mode_ms / self.direct_ms


def ratios(runs: Sequence[Run], mode: str) -> list[Ratio]:
    """Per series that measured both direct and `mode`: their medians."""
    table = report.ratio_table(runs)
    out = []
    for series, group in table.groupby("series", sort=False):
        p50 = dict(zip(group["mode"].astype(str), group["p50_ms"].astype(float), strict=True))
        if "direct" in p50 and mode in p50:
            out.append(Ratio(str(series), mode, p50["direct"], p50[mode]))
    return out


def times(measured: Sequence[Ratio]) -> str:
    """'14.9x' or '14.9x and 24.5x'."""
    return counted([f"{r.ratio:.1f}x" for r in measured])


def ratio_sentence(measured: Sequence[Ratio], mode: str) -> str:
    return "; ".join(f"{r.series}: direct {r.direct_ms:.1f} ms, {mode} {r.mode_ms:.1f} ms "
                     f"({r.ratio:.1f}x, median)" for r in measured) or f"no {mode} samples"


def _where(r: Ratio, measured: Sequence[Ratio]) -> str:
    return f" in {r.series}" if len(measured) > 1 else ""


def judge_rootwrap(measured: Sequence[Ratio]) -> Judgement:
    """Rootwrap's start-up dominates the call: at least ROOTWRAP_DOMINATES x direct."""
    if not measured:
        return Judgement(not_compared=("no series measured the call both direct and "
                                       "through rootwrap",))
    agrees = tuple(f"through rootwrap the call took {r.ratio:.1f}x as long as direct"
                   f"{_where(r, measured)}, at least {ROOTWRAP_DOMINATES:.0f}x (the field "
                   "notes: 0.713 s against 0.048 s, about 15x)"
                   for r in measured if r.ratio >= ROOTWRAP_DOMINATES)
    differs = tuple(f"through rootwrap the call took only {r.ratio:.1f}x as long as direct"
                    f"{_where(r, measured)}, under {ROOTWRAP_DOMINATES:.0f}x: its start-up "
                    "does not dominate here (the field notes: about 15x)"
                    for r in measured if r.ratio < ROOTWRAP_DOMINATES)
    return Judgement(agrees, differs)


def judge_daemon(measured: Sequence[Ratio]) -> Judgement:
    """The daemon brings the call near direct: at most NEAR_DIRECT x."""
    if not measured:
        return Judgement(not_compared=("no series measured the call both direct and "
                                       "through the daemon",))
    agrees = tuple(f"through the daemon the call took {r.ratio:.1f}x as long as direct"
                   f"{_where(r, measured)}, near direct (at most {NEAR_DIRECT:.0f}x)"
                   for r in measured if r.ratio <= NEAR_DIRECT)
    differs = tuple(f"through the daemon the call still took {r.ratio:.1f}x as long as "
                    f"direct{_where(r, measured)}, over {NEAR_DIRECT:.0f}x; in the field "
                    "notes ~0.05 s against 0.048 s"
                    for r in measured if r.ratio > NEAR_DIRECT)
    return Judgement(agrees, differs)


def _rootwrap_cost(runs: Sequence[Run], options: FigureOptions) -> Told:
    measured = ratios(runs, "rootwrap")
    judgement = judge_rootwrap(measured)
    if not measured:
        title = "Rootwrap's cost: not measured against direct"
    elif judgement.differs:
        title = f"Rootwrap's cost: each call {times(measured)} the direct one"
    else:
        title = (f"Root cause: rootwrap's start-up makes each call {times(measured)} "
                 "the direct one")
    return Told(title, ratio_sentence(measured, "rootwrap") + ".", judgement, [
        renamed(report.latency_figure(report.latency_samples(runs), options),
                "finding-4-latency"),
        Table("finding-4-ratios", "Latency per mode and ratio to direct",
              report.ratio_table(runs)),
    ])


#: Chapters by story name.
CHAPTERS: dict[str, tuple[Chapter, ...]] = {"field-notes": (
    Chapter(4, "What a DHCP host-file update costs through rootwrap",
            "Each port update runs `ip netns exec qdhcp-<uuid> ip route list` through "
            "neutron-rootwrap: 0.713 s instead of 0.048 s without it (about 15x).",
            of_kind("rootwrap"), "scenarios/rootwrap-probe.yaml (as root)", _rootwrap_cost),
)}
