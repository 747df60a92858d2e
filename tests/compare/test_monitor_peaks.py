"""`osbench compare` on monitor peaks: runs written through the real journal with
monitor rows, judged by the relative change (one peak per case) or with
Mann-Whitney U (repeats); a worse peak never fails the comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from osbench import compare as cmp
from osbench import results
from osbench.cli.program import main
from osbench.journal import Journal
from osbench.report.build import Extras, build_report

BACKLOG = "osbench_sim_dhcp_agent_backlog_ports"


def monitored_run(path: Path, name: str, cases: Mapping[str, Mapping[str, Sequence[float]]],
                  ) -> Path:
    """A boot run whose cases each have 10 ok instances and, per monitor metric,
    the readings given (2 s apart; labels none)."""
    journal = Journal.create(path, name, {"scenario": {"name": "b", "kind": "boot"},
                                          "cases": [{"case_id": c} for c in cases]})
    for case, metrics in cases.items():
        for i in range(10):
            journal.record("instances", {"case": case, "outcome": "ok",
                                         "time_to_active_s": 50.0 + i,
                                         "time_to_phone_home_s": 80.0 + i})
        for metric, values in metrics.items():
            source = "processes@ctl" if metric == "host_cpu_pct" else "prometheus:sim"
            for k, value in enumerate(values):
                journal.record("monitor", {"case": case, "t_s": 2.0 * k, "source": source,
                                           "metric": metric, "value": float(value)})
        journal.record("cases", {"case": case, "status": "completed"})
    journal.finish("completed")
    return path / name


def peaks_of(base: Path, cand: Path, **kwargs: Any) -> dict[tuple[str, str], dict[str, Any]]:
    table = cmp.compare(results.load(base), results.load(cand), **kwargs)
    return {(r["case"], r["metric"]): r for r in cmp.monitor_peaks(table).to_dict("records")}


def test_dhcp_queue_peak_183_to_4_is_better(tmp_path: Path) -> None:
    base = monitored_run(tmp_path, "base", {"count=200": {BACKLOG: [0, 90, 183, 120, 30]}})
    cand = monitored_run(tmp_path, "cand", {"count=200": {BACKLOG: [0, 3, 4, 1, 0]}})
    table = cmp.compare(results.load(base), results.load(cand))
    row = cmp.monitor_peaks(table).set_index("metric").loc[BACKLOG]
    assert (row["baseline"], row["candidate"], row["verdict"]) == (183, 4, "better")
    assert row["change_pct"] == pytest.approx((4 - 183) / 183 * 100)
    assert pd.isna(row["p_value"])  # no test with one peak each
    assert "no significance test without repeats" in row["note"]
    assert ("count=200: neutron-dhcp-agent backlog (prometheus:sim, "
            f"{BACKLOG}) peak 183 -> 4 ports, better (-98%)") in cmp.to_text(table)


@pytest.mark.parametrize(("candidate", "verdict"), [
    (60.0, "noise"),    # +20%: not beyond the 20% threshold
    (60.5, "worse"),    # +21%
    (39.5, "better"),   # -21%
])
def test_relative_threshold_edges(tmp_path: Path, candidate: float, verdict: str) -> None:
    base = monitored_run(tmp_path, "base", {"c": {"host_cpu_pct": [10, 50, 20]}})
    cand = monitored_run(tmp_path, "cand", {"c": {"host_cpu_pct": [10, candidate, 20]}})
    assert peaks_of(base, cand)[("c", "host_cpu_pct")]["verdict"] == verdict


def test_a_small_absolute_change_is_noise_however_relative(tmp_path: Path) -> None:
    # 1 -> 3 ports is +200% but 2 ports: below PEAK_MIN_CHANGE["ports"] (5)
    base = monitored_run(tmp_path, "base", {"c": {BACKLOG: [0, 1, 0]}})
    small = monitored_run(tmp_path, "small", {"c": {BACKLOG: [0, 3, 0]}})
    big = monitored_run(tmp_path, "big", {"c": {BACKLOG: [0, 6, 0]}})
    assert peaks_of(base, small)[("c", BACKLOG)]["verdict"] == "noise"
    assert peaks_of(base, big)[("c", BACKLOG)]["verdict"] == "worse"


def test_the_threshold_option_for_peaks(tmp_path: Path) -> None:
    base = monitored_run(tmp_path, "base", {"c": {"host_cpu_pct": [50]}})
    cand = monitored_run(tmp_path, "cand", {"c": {"host_cpu_pct": [70]}})  # +40%
    assert peaks_of(base, cand)[("c", "host_cpu_pct")]["verdict"] == "worse"
    relaxed = peaks_of(base, cand, thresholds={cmp.PEAKS_THRESHOLD_KEY: 50.0})
    assert relaxed[("c", "host_cpu_pct")]["verdict"] == "noise"


@pytest.mark.parametrize(("repeats", "verdict"), [(3, "noise"), (5, "worse")])
def test_repeats_need_mann_whitney_too(tmp_path: Path, repeats: int, verdict: str) -> None:
    b_peaks = [10.0 + r for r in range(repeats)]
    c_peaks = [20.0 + r for r in range(repeats)]  # every one higher, about +90%
    base = monitored_run(tmp_path, "base", {f"c#{r + 1}": {"host_cpu_pct": [0, p]}
                                            for r, p in enumerate(b_peaks)})
    cand = monitored_run(tmp_path, "cand", {f"c#{r + 1}": {"host_cpu_pct": [0, p]}
                                            for r, p in enumerate(c_peaks)})
    row = peaks_of(base, cand)[("c", "host_cpu_pct")]
    expected_p = stats.mannwhitneyu(b_peaks, c_peaks, alternative="two-sided").pvalue
    assert row["p_value"] == pytest.approx(expected_p)
    assert row["baseline"] == pytest.approx(sorted(b_peaks)[repeats // 2])
    assert row["verdict"] == verdict  # 3 against 3: p = 0.1 however far apart
    assert row["note"] == f"median of {repeats}/{repeats} repeats' peaks; Mann-Whitney U"


def test_a_series_only_one_run_has_is_incomparable(tmp_path: Path) -> None:
    base = monitored_run(tmp_path, "base", {"c": {"host_cpu_pct": [50]}})
    cand = monitored_run(tmp_path, "cand", {"c": {"host_cpu_pct": [50], BACKLOG: [0, 9]}})
    row = peaks_of(base, cand)[("c", BACKLOG)]
    assert (row["verdict"], row["note"]) == ("incomparable", "not in baseline")


def test_a_worse_peak_never_fails_compare(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    base = monitored_run(tmp_path, "base", {"c": {BACKLOG: [0, 4, 0]}})
    cand = monitored_run(tmp_path, "cand", {"c": {BACKLOG: [0, 90, 183, 20]}})
    assert main(["compare", str(base), str(cand)]) == 0
    out = capsys.readouterr().out
    assert cmp.PEAKS_NOTE in out
    assert "peak 4 -> 183 ports, worse (+4475%)" in out
    assert main(["compare", str(base), str(cand), "--format", "md"]) == 0
    assert (f"| c | neutron-dhcp-agent backlog (prometheus:sim, {BACKLOG}) [ports] | 4 | 183 "
            "| +4475% | worse |") in capsys.readouterr().out
    assert main(["compare", str(base), str(cand), "--format", "html"]) == 0
    assert "<h3>Monitor peaks</h3>" in capsys.readouterr().out


def test_runs_without_monitors_print_no_peaks(tmp_path: Path) -> None:
    base = monitored_run(tmp_path, "base", {"c": {}})
    table = cmp.compare(results.load(base), results.load(base))
    assert cmp.monitor_peaks(table).empty
    assert "Monitor peaks" not in cmp.to_text(table) + cmp.to_markdown(table)


def test_the_reports_comparison_has_the_peaks_table(tmp_path: Path) -> None:
    base = monitored_run(tmp_path, "base", {"c": {BACKLOG: [0, 90, 183, 20]}})
    cand = monitored_run(tmp_path, "cand", {"c": {BACKLOG: [0, 4, 0]}})
    report = build_report([results.load(base), results.load(cand)],
                          extras=Extras(compare=True))
    (peaks,) = [t for t in report.tables if t.name == "compare-1-monitor-peaks"]
    row = peaks.frame.set_index("metric").loc[BACKLOG]
    assert (row["baseline"], row["candidate"], row["verdict"]) == (183, 4, "better")
    assert peaks.note == cmp.PEAKS_NOTE
