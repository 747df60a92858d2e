"""`osbench compare` on runs written through the real journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from osbench import results
from osbench.cli.program import main
from osbench.compare import compare, to_markdown
from osbench.journal import Journal


def boot_run(path: Path, name: str, cases: dict[str, dict[str, Any]]) -> Path:
    """A boot run whose cases have `ok`/`fail` counts and phone-home times."""
    journal = Journal.create(path, name, {"scenario": {"name": "b", "kind": "boot"},
                                          "cases": [{"case_id": c} for c in cases]})
    for case, spec in cases.items():
        times = spec["times"]
        for i in range(spec["ok"] + spec["fail"]):
            ok = i < spec["ok"]
            journal.record("instances", {
                "case": case, "outcome": "ok" if ok else "error",
                "time_to_active_s": float(times[i % len(times)]) * 0.8,
                "time_to_phone_home_s": float(times[i % len(times)]) if ok else None})
        journal.record("cases", {"case": case, "status": "completed"})
    journal.finish("completed")
    return path / name


RNG = np.random.default_rng(7)
BASE_TIMES = RNG.normal(100, 5, 200)


def test_slower_phone_home_is_worse_same_is_noise(tmp_path: Path) -> None:
    base = boot_run(tmp_path, "base", {"count=200": {"ok": 200, "fail": 0, "times": BASE_TIMES}})
    same = boot_run(tmp_path, "same", {"count=200": {"ok": 200, "fail": 0,
                                                     "times": RNG.permutation(BASE_TIMES)}})
    slow = boot_run(tmp_path, "slow", {"count=200": {"ok": 200, "fail": 0,
                                                     "times": BASE_TIMES * 1.3}})
    noise = compare(results.load(base), results.load(same)).set_index("metric")
    assert noise.loc["time_to_phone_home_s", "verdict"] == "noise"
    worse = compare(results.load(base), results.load(slow)).set_index("metric")
    row = worse.loc["time_to_phone_home_s"]
    assert row["verdict"] == "worse"
    assert row["ratio"] == pytest.approx(1.3)
    assert row["p_value"] == pytest.approx(
        stats.mannwhitneyu(BASE_TIMES, BASE_TIMES * 1.3, alternative="two-sided").pvalue)
    assert worse.loc["phone_home_ok_pct", "verdict"] == "noise"


def test_beyond_threshold_but_not_significant_is_noise(tmp_path: Path) -> None:
    base = boot_run(tmp_path, "base", {"c": {"ok": 3, "fail": 0, "times": [100, 101, 102]}})
    cand = boot_run(tmp_path, "cand", {"c": {"ok": 3, "fail": 0, "times": [120, 121, 90]}})
    row = compare(results.load(base), results.load(cand)).set_index("metric").loc[
        "time_to_phone_home_s"]
    assert row["verdict"] == "noise"
    assert "+18.8% is not significant" in row["note"]


def test_success_rate_verdicts(tmp_path: Path) -> None:
    t = [100.0]
    clean = boot_run(tmp_path, "clean", {"c": {"ok": 200, "fail": 0, "times": t}})
    one_bad = boot_run(tmp_path, "one", {"c": {"ok": 199, "fail": 1, "times": t}})
    many_bad = boot_run(tmp_path, "many", {"c": {"ok": 180, "fail": 20, "times": t}})
    verdict = {
        (a, b): compare(results.load(x), results.load(y)).set_index("metric").loc[
            "phone_home_ok_pct", "verdict"]
        for (a, x), (b, y) in [(("clean", clean), ("one", one_bad)),
                               (("one", one_bad), ("clean", clean)),
                               (("one", one_bad), ("many", many_bad)),
                               (("many", many_bad), ("one", one_bad))]}
    assert verdict == {("clean", "one"): "new failure", ("one", "clean"): "fixed",
                       ("one", "many"): "worse", ("many", "one"): "better"}


def test_golden_markdown_and_incomparable_case(tmp_path: Path) -> None:
    base = boot_run(tmp_path, "base", {"a": {"ok": 2, "fail": 0, "times": [10, 20]},
                                       "b": {"ok": 1, "fail": 0, "times": [5]}})
    cand = boot_run(tmp_path, "cand", {"a": {"ok": 1, "fail": 1, "times": [10, 20]}})
    text = to_markdown(compare(results.load(base), results.load(cand)))
    assert text == (
        "| case | metric | baseline | candidate | ratio | p | verdict |\n"
        "|---|---|---:|---:|---:|---:|---|\n"
        "| a | phone_home_ok_pct | 100 | 50 | 0.5 | 1 | **new failure** |\n"
        "| a | time_to_active_s | 12 | 12 | 1 | 1 | noise |\n"
        "| a | time_to_phone_home_s | 15 | 10 | 0.667 | 1 | noise |\n"
        "| b | phone_home_ok_pct | – | – | – | – | incomparable |\n"
        "| b | time_to_active_s | – | – | – | – | incomparable |\n"
        "| b | time_to_phone_home_s | – | – | – | – | incomparable |\n")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = boot_run(tmp_path, "base", {"c": {"ok": 200, "fail": 0, "times": BASE_TIMES}})
    slow = boot_run(tmp_path, "slow", {"c": {"ok": 200, "fail": 0, "times": BASE_TIMES * 2}})
    assert main(["compare", str(base), str(base)]) == 0
    assert main(["compare", str(base), str(slow)]) == 1
    assert "worse" in capsys.readouterr().out
    assert main(["compare", str(base), str(slow), "--threshold", "nope:5"]) == 2
    assert "unknown metric(s) in --threshold: nope" in capsys.readouterr().err
    assert main(["compare", str(base), str(slow), "--threshold", "time_to_phone_home_s:200",
                 "--threshold", "time_to_active_s:200"]) == 0
