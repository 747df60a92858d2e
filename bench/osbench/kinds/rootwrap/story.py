"""The rootwrap kind's chapter of the field-notes story (finding 4), and the ratio
sentence finding 5 also tells."""

from __future__ import annotations

from collections.abc import Sequence

from osbench.kinds.rootwrap import report
from osbench.report.model import Item, Table
from osbench.report.story import Chapter, of_kind, renamed
from osbench.report.style import FigureOptions
from osbench.results import Run


def ratio_sentence(runs: Sequence[Run], mode: str) -> str:
    table = report.ratio_table(runs)
    lines = []
    for series, group in table.groupby("series", sort=False):
        p50 = dict(zip(group["mode"].astype(str), group["p50_ms"].astype(float), strict=True))
        if "direct" in p50 and mode in p50:
            direct, wrapped = p50["direct"], p50[mode]
            lines.append(f"{series!s}: direct {direct:.1f} ms, {mode} {wrapped:.1f} ms "
                         f"({wrapped / direct:.1f}x, median)")
    return "; ".join(lines) or f"no {mode} samples"


def _rootwrap_cost(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    return ratio_sentence(runs, "rootwrap") + ".", [
        renamed(report.latency_figure(report.latency_samples(runs), options),
                 "finding-4-latency"),
        Table("finding-4-ratios", "Latency per mode and ratio to direct",
              report.ratio_table(runs)),
    ]


#: Chapters by story name.
CHAPTERS: dict[str, tuple[Chapter, ...]] = {"field-notes": (
    Chapter(4, "Root cause: every DHCP host-file update pays rootwrap's start-up",
            "Each port update runs `ip netns exec qdhcp-<uuid> ip route list` through "
            "neutron-rootwrap: 0.713 s instead of 0.048 s without it (about 15x).",
            of_kind("rootwrap"), "scenarios/rootwrap-probe.yaml (as root)", _rootwrap_cost),
)}
