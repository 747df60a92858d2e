"""The capacity-search part of a report (issue 17), on real searches of the embedded
simulated cloud: small pets and big pets, count 10 to 80 by 10, with an SLA on the
outcome and the p95 time to phone home (small pets miss it before 80). The figure,
the summary and the steps must be the `search` rows' numbers; two runs share one
figure; a search killed after its third point renders, marked incomplete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection

from osbench import results
from osbench.journal import Journal
from osbench.report import html, markdown
from osbench.report import search as search_report
from osbench.report.build import build_report
from osbench.report.model import Plot, Report, Section, Table
from tests.report.conftest import _run

SCENARIO = """\
name: search-{profile}
kind: boot
params: {{count: 10}}
target: {{sim_profile: {profile}}}
search: {{param: count, start: 10, max: 80, resolution: 10}}
sla: ["phone_home_ok_pct == 100", "p95(time_to_phone_home_s) <= 160"]
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, results.Run]:
    """Both profiles' searches, in one `osbench run` (~25 s at time scale 60)."""
    where = tmp_path_factory.mktemp("search-runs")
    files = []
    for profile in ("small-pets", "big-pets"):
        files.append(where / f"{profile}.yaml")
        files[-1].write_text(SCENARIO.format(profile=profile))
    proc = _run(*map(str, files), out=where / "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [results.load(d) for d in sorted((where / "results").iterdir())]
    return {r.manifest["scenario"]["name"].removeprefix("search-"): r for r in runs}


def section_of(report: Report) -> Section:
    (section,) = [s for s in report.sections if s.title == "Capacity search"]
    return section


def items(section: Section) -> tuple[Table, Plot, Table]:
    summary, plot, steps = section.items
    assert isinstance(summary, Table) and isinstance(plot, Plot) and isinstance(steps, Table)
    return summary, plot, steps


def verticals(ax: Axes) -> list[float]:
    """The x of every dashed vertical line (the capacities)."""
    return sorted(float(np.asarray(line.get_xdata())[0]) for line in ax.get_lines()
                  if line.get_linestyle() == "--")


def marks(plot: Plot) -> list[tuple[float, float, str]]:
    """Every drawn mark of the left panel: (x, y, "o" open or "x")."""
    out = []
    for collection in plot.figure.axes[0].collections:
        assert isinstance(collection, PathCollection)
        kind = "o" if len(collection.get_facecolor()) == 0 else "x"
        out += [(float(x), float(y), kind) for x, y in np.asarray(collection.get_offsets())]
    return sorted(out)


def test_figure_and_tables_are_the_search_rows(searched: dict[str, results.Run]) -> None:
    run = searched["small-pets"]
    rows = run.table("search")
    (summary_row,) = run.table("search_summary").to_dict("records")
    assert set(rows["verdict"]) == {"pass", "fail"}  # the SLA is missed before 80

    section = section_of(build_report([run]))
    summary, plot, steps = items(section)

    # The summary is the search_summary row.
    (found,) = summary.frame.to_dict("records")
    assert (found["capacity"], found["first_fail"], found["points"], found["status"]) == (
        summary_row["capacity"], summary_row["first_fail"], summary_row["points"], "done")
    assert section.notes[0] == (
        f"search-small-pets: count capacity {summary_row['capacity']:g}, first fail "
        f"{summary_row['first_fail']:g} ({summary_row['points']} points, "
        f"{summary_row['cases']} cases; done)")

    # The steps are the search rows, in order.
    assert steps.frame[["value", "phase", "verdict", "passed", "failed"]].to_dict(
        "records") == rows[["value", "phase", "verdict", "passed", "failed"]].astype(
        {"value": float}).to_dict("records")
    failing = steps.frame[steps.frame["verdict"] == "fail"]
    measured = {r["value"]: r["measured"] for r in rows.to_dict("records")}
    for r in failing.to_dict("records"):
        assert "p95(time_to_phone_home_s) <= 160" in r["missed"]
        p95 = measured[r["value"]]["p95(time_to_phone_home_s) <= 160"][0]
        assert f"(measured {p95:.4g})" in r["missed"]

    # The figure: each point's outcome and p95, from the cases and instances tables.
    data = plot.data.set_index(["case", "metric"])["measured"]
    cases = run.table("cases").set_index("case")
    instances = run.table("instances")
    for r in rows.to_dict("records"):
        (case,) = r["cases"]
        assert data[(case, "phone_home_ok_pct")] == cases.loc[case, "metric.phone_home_ok_pct"]
        times = instances[instances["case"] == case]["time_to_phone_home_s"].dropna()
        assert data[(case, "p95 time_to_phone_home_s")] == pytest.approx(
            np.percentile(times, 95))
        # ... which is what the SLA measured.
        assert data[(case, "p95 time_to_phone_home_s")] == pytest.approx(
            r["measured"]["p95(time_to_phone_home_s) <= 160"][0])
    # One mark per point: open where it passed, x where it failed.
    assert marks(plot) == sorted(
        (float(r["value"]), float(cases.loc[r["cases"][0], "metric.phone_home_ok_pct"]),
         "o" if r["verdict"] == "pass" else "x") for r in rows.to_dict("records"))
    # The capacity as a vertical line in both panels.
    for ax in plot.figure.axes:
        assert verticals(ax) == [summary_row["capacity"]]
    assert plot.figure.axes[1].get_ylabel() == "" and "p95 time to phone home" in (
        plot.figure.axes[1].get_title())


def test_two_runs_share_one_figure(searched: dict[str, results.Run]) -> None:
    small, big = searched["small-pets"], searched["big-pets"]
    section = section_of(build_report([small, big]))
    summary, plot, steps = items(section)
    assert len(section.plots) == 1
    assert list(summary.frame["run"]) == ["search-small-pets", "search-big-pets"]
    assert list(plot.data["series"].unique()) == ["search-small-pets", "search-big-pets"]
    assert len(steps.frame) == len(small.table("search")) + len(big.table("search"))
    capacities = [float(r.table("search_summary")["capacity"].iloc[0]) for r in (small, big)]
    legend = [t.get_text() for t in plot.figure.legends[0].get_texts()]
    for run, capacity in zip(("search-small-pets", "search-big-pets"), capacities,
                             strict=True):
        assert run in legend and f"{run}: capacity {capacity:g}" in legend
    assert verticals(plot.figure.axes[0]) == capacities


def test_a_killed_search_renders_incomplete(searched: dict[str, results.Run],
                                            tmp_path: Path) -> None:
    source = searched["small-pets"].path
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    events = (copy / "events.jsonl").read_text().splitlines(keepends=True)
    search_lines = [i for i, line in enumerate(events) if '"table":"search"' in line]
    (copy / "events.jsonl").write_text("".join(events[:search_lines[2] + 1]))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "running"
    manifest["search"] = searched["small-pets"].manifest["scenario"]["search"]
    (copy / "manifest.json").write_text(json.dumps(manifest))

    killed = results.load(copy)
    assert killed.table("search_summary").empty and len(killed.table("search")) == 3
    report = build_report([killed])
    section = section_of(report)
    summary, plot, steps = items(section)
    (found,) = summary.frame.to_dict("records")
    assert found["status"] == ("incomplete: no search_summary row (the run's status is "
                               "'running'; killed or still running)")
    assert (found["capacity"], found["first_fail"], found["points"]) == (40, None, 3)
    assert "incomplete: search-small-pets (no search_summary row" in section.notes[-1]
    assert len(steps.frame) == 3 and len(marks(plot)) == 3
    assert "incomplete: no search_summary row" in markdown.render(report)
    assert "incomplete: no search_summary row" in html.render(report, dpi=40)


def test_other_kinds_plot_what_the_sla_measured(tmp_path: Path) -> None:
    """The generic figure: one panel per criterion of the `measured` column (a kind
    with no report of its own, written through the journal), repeats as marks."""
    journal = Journal.create(tmp_path, "net", {"scenario": {"name": "net", "kind": "tick"},
                                               "cases": []})
    points: list[tuple[int, str, list[list[str]], list[float]]] = [
        (1, "pass", [], [8.0, 9.0]), (2, "pass", [], [6.0, 7.5]),
        (4, "fail", [["max(latency_ms) <= 5"], ["max(latency_ms) <= 5"]], [3.0, 4.0])]
    for value, verdict, missed, latencies in points:
        cases = [f"streams={value}#1", f"streams={value}#2"]
        journal.record("search", {
            "search": "default", "param": "streams", "value": value, "phase": "grow",
            "verdict": verdict, "passed": 2 if verdict == "pass" else 0,
            "failed": 0 if verdict == "pass" else 2, "rule": "all", "cases": cases,
            "missed": missed, "measured": {"max(latency_ms) <= 5": latencies},
            "spread": {"max(latency_ms) <= 5": latencies[1] - latencies[0]},
            "bottlenecks": ["nova-conductor CPU 100%"] * len(missed)})
        for case, latency in zip(cases, latencies, strict=True):
            journal.record("sla", {"case": case, "criterion": "max(latency_ms) <= 5",
                                   "measured": latency, "passed": verdict == "pass"})
    journal.record("search_summary", {
        "search": "default", "param": "streams", "capacity": 2, "first_fail": 4,
        "start": 1, "max": 4, "resolution": 1, "points": 3, "cases": 6, "status": "done",
        "error": None, "require": None})
    journal.finish("completed")
    run = results.load(tmp_path / "net")

    section = section_of(build_report([run]))
    _, plot, steps = items(section)
    assert [ax.get_title() for ax in plot.figure.axes] == ["max(latency_ms) <= 5"]
    assert list(plot.data["measured"]) == [8.0, 9.0, 6.0, 7.5, 3.0, 4.0]
    assert list(plot.data["repeat"]) == [1, 2] * 3
    assert marks(plot) == sorted([(1, 8.0, "o"), (1, 9.0, "o"), (2, 6.0, "o"),
                                  (2, 7.5, "o"), (4, 3.0, "x"), (4, 4.0, "x")])
    last = steps.frame.iloc[-1]
    assert last["missed"] == "max(latency_ms) <= 5 x2 (measured 3, 4)"
    assert last["spread"] == "max(latency_ms) <= 5: 1"
    assert last["top bottleneck"] == "nova-conductor CPU 100% (2 of 2 failing)"
    assert search_report.steps_text(run, "default") == "1 pass, 2 pass, 4 fail"
