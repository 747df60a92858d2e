"""`osbench compare` on capacity searches (issue 17): runs written through the real
journal with `search` and `search_summary` rows as a search journals them. A
capacity is better or worse only when the intervals [capacity, first_fail) do not
overlap; otherwise inconclusive. A worse capacity fails compare (exit 1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from osbench import compare as cmp
from osbench import results
from osbench.cli.program import main
from osbench.journal import Journal
from osbench.report.build import Extras, build_report


def search_run(path: Path, name: str, steps: Sequence[tuple[float, str]], *,
               maximum: float = 1000, search: str = "default", param: str = "count",
               finish: bool = True) -> Path:
    """A boot search run whose points had these (value, verdict); its summary (when
    `finish`) is what the points prove, as osbench.planning writes it."""
    journal = Journal.create(path, name, {"scenario": {"name": name, "kind": "boot"},
                                          "cases": [], "search": {"param": param}})
    for value, verdict in steps:
        case = f"{param}={value:g}"
        journal.record("search", {
            "search": search, "param": param, "value": value, "phase": "grow",
            "verdict": verdict, "passed": int(verdict == "pass"),
            "failed": int(verdict == "fail"), "rule": "all", "cases": [case],
            "missed": [] if verdict == "pass" else [["phone_home_ok_pct == 100"]],
            "measured": {"phone_home_ok_pct == 100": [100.0 if verdict == "pass" else 90.0]},
            "spread": {}, "bottlenecks": []})
    if not finish:
        journal.close()
        return path / name
    passes = [v for v, verdict in steps if verdict == "pass"]
    fails = [v for v, verdict in steps if verdict == "fail"]
    journal.record("search_summary", {
        "search": search, "param": param, "capacity": max(passes) if passes else None,
        "first_fail": min(fails) if fails else None, "start": steps[0][0], "max": maximum,
        "resolution": 10, "points": len(steps), "cases": len(steps), "status": "done",
        "error": None, "require": None})
    journal.finish("completed")
    return path / name


#: Capacity 180, first failure 190.
SMALL = [(10, "pass"), (20, "pass"), (40, "pass"), (80, "pass"), (160, "pass"),
         (320, "fail"), (240, "fail"), (200, "fail"), (180, "pass"), (190, "fail")]
#: Every point passes up to max 1000: [1000, beyond max).
LARGE = [(10, "pass"), (20, "pass"), (40, "pass"), (80, "pass"), (160, "pass"),
         (320, "pass"), (640, "pass"), (1000, "pass")]
#: SMALL and one more point: capacity 185, first failure 190, inside SMALL's [180, 190).
NEAR = [(10, "pass"), (20, "pass"), (40, "pass"), (80, "pass"), (160, "pass"),
        (320, "fail"), (240, "fail"), (200, "fail"), (180, "pass"), (190, "fail"),
        (185, "pass")]


def judged(base: Path, cand: Path) -> dict[Any, Any]:
    table = cmp.compare(results.load(base), results.load(cand))
    (row,) = cmp.searches(table).to_dict("records")
    return row


def test_capacity_180_to_1000_is_better_and_1000_to_180_worse_fails_compare(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = search_run(tmp_path, "small", SMALL)
    large = search_run(tmp_path, "large", LARGE)

    row = judged(small, large)
    assert (row["baseline"], row["baseline_first_fail"], row["candidate"],
            row["candidate_first_fail"], row["verdict"]) == (180, 190, 1000, None, "better")
    assert (row["baseline_interval"], row["candidate_interval"]) == (
        "[180, 190)", "[1000, beyond max 1000)")

    assert main(["compare", str(small), str(large)]) == 0
    out = capsys.readouterr().out
    assert "default: count capacity 180 -> 1000, better (boundary in [180, 190) -> " \
           "[1000, beyond max 1000))" in out
    # ... and it is a row of the comparison table, like any metric.
    assert any(line.split()[:3] == ["default", "capacity", "(count)"]
               and line.split()[-1] == "better" for line in out.splitlines())

    assert main(["compare", str(large), str(small)]) == 1  # a worse capacity fails
    out = capsys.readouterr().out
    assert "default: count capacity 1000 -> 180, worse" in out

    for fmt, expected in (("md", "| default | count | 1000 | 180 | [1000, beyond max "
                           "1000) -> [180, 190) | **worse** |"),
                          ("html", "<h3>Capacity searches</h3>")):
        assert main(["compare", str(large), str(small), "--format", fmt]) == 1
        assert expected in capsys.readouterr().out


def test_overlapping_intervals_are_inconclusive_and_touching_ones_are_judged(
        tmp_path: Path) -> None:
    small = search_run(tmp_path, "small", SMALL)            # [180, 190)
    near = search_run(tmp_path, "near", NEAR)               # [185, 190)
    row = judged(small, near)
    assert (row["verdict"], row["note"]) == ("inconclusive", "the searched intervals overlap")

    # [80, 160) against [160, 320): apart (the candidate passed where the base failed).
    low = search_run(tmp_path, "low", [(10, "pass"), (20, "pass"), (40, "pass"),
                                       (80, "pass"), (160, "fail")])
    mid = search_run(tmp_path, "mid", [(10, "pass"), (20, "pass"), (40, "pass"),
                                       (80, "pass"), (160, "pass"), (320, "fail")])
    assert judged(low, mid)["verdict"] == "better"
    assert judged(mid, low)["verdict"] == "worse"

    # Start failing: no capacity, the boundary below start, still below [80, 160).
    none = search_run(tmp_path, "none", [(10, "fail")])
    row = judged(none, low)
    assert (row["baseline"], row["baseline_interval"], row["verdict"]) == (
        None, "[below start, 10)", "better")
    table = cmp.compare(results.load(none), results.load(low))
    assert "capacity none (below start) -> 80, better" in cmp.to_text(table)


def test_a_killed_search_is_judged_on_what_its_points_prove(tmp_path: Path) -> None:
    # Killed after 40 passed and before any failure: [40, not yet failed) overlaps
    # SMALL's [180, 190) ...
    killed = search_run(tmp_path, "killed", SMALL[:3], finish=False)
    small = search_run(tmp_path, "small", SMALL)
    row = judged(killed, small)
    assert (row["baseline"], row["baseline_interval"], row["verdict"]) == (
        40, "[40, not yet failed)", "inconclusive")
    assert "baseline search did not end" in str(row["note"])
    # ... but once it failed at 80 its boundary is below SMALL's.
    killed_later = search_run(tmp_path, "later", [*SMALL[:3], (80, "fail")], finish=False)
    assert judged(killed_later, small)["verdict"] == "better"


def test_searches_are_matched_by_sweep_point_and_param(tmp_path: Path) -> None:
    base = search_run(tmp_path, "base", SMALL, search="profile=small-pets")
    other = search_run(tmp_path, "other", LARGE, search="profile=big-pets")
    found = cmp.searches(cmp.compare(results.load(base), results.load(other)))
    assert dict(zip(found["search"], found["note"], strict=True)) == {
        "profile=big-pets": "not in baseline", "profile=small-pets": "not in candidate"}
    assert set(found["verdict"]) == {"incomparable"}

    batch = search_run(tmp_path, "batch", LARGE, param="batch.size")
    row = judged(search_run(tmp_path, "count", SMALL), batch)
    assert (row["verdict"], row["note"]) == ("incomparable", "searched count vs batch.size")


def test_the_reports_comparison_has_the_capacities(tmp_path: Path) -> None:
    runs = [results.load(search_run(tmp_path, "small", SMALL)),
            results.load(search_run(tmp_path, "large", LARGE))]
    report = build_report(runs, extras=Extras(compare=True))
    (table,) = [t for t in report.tables if t.name == "compare-1-searches"]
    assert table.frame[["search", "baseline", "candidate", "verdict"]].to_dict("records") == [
        {"search": "default", "baseline": 180, "candidate": 1000, "verdict": "better"}]
