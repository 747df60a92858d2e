"""The netsweep kind's chapter of the field-notes story (finding 7)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from osbench.kinds.netsweep import report
from osbench.report.model import Item, Plot, Table
from osbench.report.story import Chapter, of_kind, renamed
from osbench.report.style import FigureOptions
from osbench.results import Run

#: The field notes' table (Gb/s), for side-by-side reading with the sweep here.
FIELD_QUEUES = pd.DataFrame({"queues": [1, 2, 4, 8],
                             "kernel 3.13": [3.28, 3.41, 3.51, 3.57],
                             "kernel 4.4": [3.23, 6.00, 8.02, 8.42]})


def _queues(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    stats = report.throughput_stats(runs)
    lines = []
    for series, group in stats.groupby("series", sort=False):
        points = group[group["n"] > 0]
        name = "this lab" if series == "default" else str(series)
        lines.append(f"{name}: " + ", ".join(
            f"{queues} queue(s) {gbps:.1f} Gb/s" for queues, gbps in
            zip(points["queues"].astype(int), points["mean_gbps"].astype(float), strict=True)))
    plot: Plot = report.throughput_figure(stats, options)
    return "; ".join(lines) + ".", [
        renamed(plot, "finding-7-sweep"),
        Table("finding-7-throughput", "Summed goodput here, Gb/s (mean ± 95% half-width)",
              report.throughput_table(stats)),
        Table("finding-7-field", "The field notes' table, Gb/s", FIELD_QUEUES),
    ]


#: Chapters by story name.
CHAPTERS: dict[str, tuple[Chapter, ...]] = {"field-notes": (
    Chapter(7, "Network node: throughput against NIC queues",
            "Six parallel TCP streams through the network node, summed, mean of ten runs, "
            "with 1, 2, 4, 8 queues (ethtool -L): kernel 4.4 scaled from 3.2 to 8.4 Gb/s, "
            "kernel 3.13 stayed near 3.5 Gb/s. On this lab's veth links (2 cores) no gain "
            "is expected: the sweep shows the mechanism, not a NIC.",
            of_kind("netsweep"), "scenarios/netsweep-multiqueue.yaml (as root, on `osbench "
            "lab up`)", _queues),
)}
