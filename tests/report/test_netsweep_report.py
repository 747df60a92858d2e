"""Netsweep throughput: the per-point 95% interval checked against scipy, the field-style
table. (`mean_interval` itself: tests/test_stats.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from osbench import results
from osbench.kinds.netsweep import report as netsweep_module
from osbench.report import FigureOptions, markdown
from tests.report.runs import NETSWEEP_ROUNDS, netsweep_run


def test_stats_per_variant_and_queue_count(netsweep: results.Run) -> None:
    table = netsweep_module.throughput_stats([netsweep]).set_index(["series", "queues"])
    for (variant, queues), sums in NETSWEEP_ROUNDS.items():
        row = table.loc[(variant, queues)]
        low, high = stats.t.interval(0.95, len(sums) - 1, loc=np.mean(sums),
                                     scale=stats.sem(sums))
        assert row["n"] == 3
        assert (row["low_gbps"], row["high_gbps"]) == (pytest.approx(low), pytest.approx(high))
    # The round with a failed stream carries no sum: counted, not averaged.
    assert table.loc[("kernel-4.4", 8), "failed"] == 1


def test_field_style_table(netsweep: results.Run) -> None:
    text = markdown.table(netsweep_module.throughput_table(
        netsweep_module.throughput_stats([netsweep])))
    assert text.splitlines()[:3] == [
        "| queues | kernel-3.13 | kernel-4.4 |",
        "|---:|---|---|",
        "| 1 | 3.28 ± 0.19 | 3.23 ± 0.07 |",
    ]
    assert text.splitlines()[-1] == "| 8 | 3.57 ± 0.07 | 8.42 ± 0.26 |"


def test_figure_log2_axis_one_series_per_variant(netsweep: results.Run) -> None:
    plot = netsweep_module.throughput_figure(
        netsweep_module.throughput_stats([netsweep]), FigureOptions())
    ax = plot.figure.axes[0]
    assert plot.figure.get_suptitle() == "Throughput against queue count"
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8"]
    assert ax.get_legend_handles_labels()[1] == ["kernel-3.13", "kernel-4.4"]


def test_two_runs_are_two_series_each(netsweep: results.Run, tmp_path: Path) -> None:
    other = results.load(netsweep_run(tmp_path, "other-run"))
    series = netsweep_module.throughput_stats([netsweep, other])["series"].unique().tolist()
    assert series == ["netsweep-test (net-run) / kernel-3.13",
                      "netsweep-test (net-run) / kernel-4.4",
                      "netsweep-test (other-run) / kernel-3.13",
                      "netsweep-test (other-run) / kernel-4.4"]
    same_twice = netsweep_module.throughput_stats([netsweep, netsweep])["series"].unique()
    assert len(same_twice) == 4
