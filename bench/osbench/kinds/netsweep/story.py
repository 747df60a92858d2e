"""The netsweep kind's chapter of the field-notes story (finding 7).

The field notes' finding is throughput against queue count per kernel: 4.4 scaled
(3.2 to 8.4 Gb/s from 1 to 8 queues, 2.6x), 3.13 stayed flat (1.1x). A series
named after one of those kernels ("kernel-4.4", "4.4.0-210") is judged against
its shape; any other series (this lab's veth links) has no field figure to match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from osbench.kinds.netsweep import report
from osbench.report.model import Item, Plot, Table
from osbench.report.story import Chapter, Judgement, Told, of_kind, renamed
from osbench.report.style import FigureOptions
from osbench.results import Run

#: The field notes' table (Gb/s), for side-by-side reading with the sweep here.
FIELD_QUEUES = pd.DataFrame({"queues": [1, 2, 4, 8],
                             "kernel 3.13": [3.28, 3.41, 3.51, 3.57],
                             "kernel 4.4": [3.23, 6.00, 8.02, 8.42]})

#: Most queues against fewest: at least this gain "scales" (kernel 4.4: 2.6x) ...
SCALES = 1.5
#: ... and under this one "stays flat" (kernel 3.13: 1.09x).
FLAT = 1.25

_KERNEL = re.compile(r"(?<![\d.])(3\.13|4\.4)(?!\d)")


@dataclass(frozen=True)
class Sweep:
    """One series' mean Gb/s per queue count (counts with rounds only), fewest first."""

    name: str
    points: tuple[tuple[int, float], ...]

    @property
    def gain(self) -> float:
        """Most queues' throughput over fewest queues' (NaN below two counts)."""
        if len(self.points) < 2 or self.points[0][1] <= 0:
            return float("nan")
        return self.points[-1][1] / self.points[0][1]


def sweeps(stats: pd.DataFrame) -> list[Sweep]:
    """Per series of the throughput statistics, in order."""
    out = []
    for series, group in stats.groupby("series", sort=False):
        points = group[group["n"] > 0].sort_values("queues")
        out.append(Sweep("this lab" if series == "default" else str(series), tuple(
            (int(q), float(g)) for q, g in zip(points["queues"], points["mean_gbps"],
                                               strict=True))))
    return out


def judge_queues(stats: pd.DataFrame) -> Judgement:
    """A kernel-4.4 series scales (SCALES x or more from fewest to most queues), a
    kernel-3.13 one stays flat (under FLAT x); other series are not compared."""
    agrees, differs, other = [], [], []
    for sweep in sweeps(stats):
        if len(sweep.points) < 2:
            other.append(f"{sweep.name} has rounds at fewer than two queue counts")
            continue
        span = (f"{sweep.name} went {sweep.gain:.1f}x from {sweep.points[0][0]} to "
                f"{sweep.points[-1][0]} queues")
        kernel = _KERNEL.search(sweep.name)
        if kernel is None:
            other.append(f"{span}; the field notes measured kernels 3.13 and 4.4 on a NIC, "
                         "and on this lab's veth links (2 cores) no gain is expected")
        elif kernel[1] == "4.4" and sweep.gain >= SCALES:
            agrees.append(f"{span}, as kernel 4.4 scaled (at least {SCALES}x)")
        elif kernel[1] == "4.4":
            differs.append(f"{span}, under {SCALES}x; in the field notes kernel 4.4 scaled "
                           "2.6x")
        elif sweep.gain < FLAT:
            agrees.append(f"{span}, flat (under {FLAT}x) as kernel 3.13 was")
        else:
            differs.append(f"{span}; in the field notes kernel 3.13 stayed flat near "
                           "3.5 Gb/s")
    return Judgement(tuple(agrees), tuple(differs), tuple(other))


def _title(stats: pd.DataFrame) -> str:
    """'Throughput against NIC queues: kernel-4.4 3.2 Gb/s at 1 queue, 8.4 at 8'."""
    clauses = []
    for sweep in sweeps(stats):
        if len(sweep.points) >= 2:
            (q_low, low), *_, (q_high, high) = sweep.points
            clauses.append(f"{sweep.name} {low:.1f} Gb/s at {q_low} "
                           f"queue{'s' if q_low > 1 else ''}, {high:.1f} at {q_high}")
    return "Throughput against NIC queues: " + ("; ".join(clauses) or
                                                 "fewer than two queue counts measured")


def _queues(runs: Sequence[Run], options: FigureOptions) -> Told:
    stats = report.throughput_stats(runs)
    lines = []
    for series, group in stats.groupby("series", sort=False):
        points = group[group["n"] > 0]
        name = "this lab" if series == "default" else str(series)
        lines.append(f"{name}: " + ", ".join(
            f"{queues} queue(s) {gbps:.1f} Gb/s" for queues, gbps in
            zip(points["queues"].astype(int), points["mean_gbps"].astype(float), strict=True)))
    plot: Plot = report.throughput_figure(stats, options)
    items: list[Item] = [
        renamed(plot, "finding-7-sweep"),
        Table("finding-7-throughput", "Summed goodput here, Gb/s (mean ± 95% half-width)",
              report.throughput_table(stats)),
        Table("finding-7-field", "The field notes' table, Gb/s", FIELD_QUEUES),
    ]
    return Told(_title(stats), "; ".join(lines) + ".", judge_queues(stats), items)


#: Chapters by story name.
CHAPTERS: dict[str, tuple[Chapter, ...]] = {"field-notes": (
    Chapter(7, "Network node: throughput against NIC queues",
            "Six parallel TCP streams through the network node, summed, mean of ten runs, "
            "with 1, 2, 4, 8 queues (ethtool -L): kernel 4.4 scaled from 3.2 to 8.4 Gb/s, "
            "kernel 3.13 stayed near 3.5 Gb/s.",
            of_kind("netsweep"), "scenarios/netsweep-multiqueue.yaml (as root, on `osbench "
            "lab up`)", _queues),
)}
