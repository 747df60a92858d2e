"""The rootwrap section: latency per mode on a log axis and the ratio table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from osbench import results
from osbench.kinds.rootwrap.report import latency_samples, ratio_table
from osbench.report import FigureOptions, build_report, html
from tests.report.runs import ROOTWRAP_SAMPLES, rootwrap_run


@pytest.fixture
def probe(tmp_path: Path) -> results.Run:
    return results.load(rootwrap_run(tmp_path, "rw-run"))


def test_ratio_table_from_the_raw_samples(probe: results.Run) -> None:
    table = ratio_table([probe]).set_index("mode")
    assert list(table.index) == ["direct", "rootwrap", "daemon"]
    for mode, values in ROOTWRAP_SAMPLES.items():
        assert table.loc[mode, "n"] == len(values)
        assert table.loc[mode, "p50_ms"] == pytest.approx(np.median(values))
        assert table.loc[mode, "p99_ms"] == pytest.approx(np.percentile(values, 99))
    assert table.loc["rootwrap", "ratio_to_direct"] == pytest.approx(713.0 / 48.0)
    assert table.loc["direct", "ratio_to_direct"] == 1.0
    assert (table.loc["rootwrap", "ratio_ci_low"], table.loc["rootwrap", "ratio_ci_high"]) \
        == (14.0, 15.5)


def test_killed_run_has_ratios_without_intervals(tmp_path: Path) -> None:
    run = results.load(rootwrap_run(tmp_path, "rw-killed", finish=False))
    assert run.incomplete
    table = ratio_table([run]).set_index("mode")
    assert table.loc["daemon", "ratio_to_direct"] == pytest.approx(60.0 / 48.0)
    assert math.isnan(table.loc["daemon", "ratio_ci_low"])
    assert "INCOMPLETE" in html.render(build_report([run]))


def test_figure_is_log_scale_one_box_group_per_mode(probe: results.Run) -> None:
    report = build_report([probe], FigureOptions())
    (plot,) = report.plots
    ax = plot.figure.axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["direct", "rootwrap", "daemon"]
    assert len(plot.data) == sum(len(v) for v in ROOTWRAP_SAMPLES.values())
    assert any("sudo skipped" in note for note in report.sections[0].notes)


def test_two_runs_side_by_side(probe: results.Run, tmp_path: Path) -> None:
    other = results.load(rootwrap_run(tmp_path, "rw-other"))
    samples = latency_samples([probe, other])
    assert samples["series"].nunique() == 2
    assert len(ratio_table([probe, other])) == 6
    (plot,) = build_report([probe, other]).plots
    assert plot.figure.legends, "two series need a legend"
