"""The runner in-process with the test-only `tick` kind: journal, SLA, cleanup, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osbench import results
from osbench.runner import Runner, RunOptions, plan
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text


def scenario(text: str):  # type: ignore[no-untyped-def]
    return parse_scenario(load_text(text, "test.yaml"))


def options(tmp_path: Path, **kw) -> RunOptions:  # type: ignore[no-untyped-def]
    return RunOptions(results_dir=tmp_path / "results", **kw)


BASE = """\
name: Tick Sweep
kind: tick
params: {value: 2.0, cleanup_marker: MARKER}
sweep:
  ticks: [2, 3]
repeat: 2
sla: ["ticks_done >= 2", "max(value) <= 4"]
"""


async def test_sweep_runs_every_case_journals_rows_and_judges_sla(tmp_path: Path) -> None:
    marker = tmp_path / "cleanup.log"
    sc = scenario(BASE.replace("MARKER", str(marker)))
    result = await Runner(sc, options(tmp_path, seed=7)).run()

    assert [c.case_id for c in result.cases] == ["ticks=2#1", "ticks=2#2", "ticks=3#1",
                                                  "ticks=3#2"]
    # ticks=3 records value 6.0 > 4: its max(value) criterion fails.
    assert [c.sla_passed for c in result.cases] == [True, True, False, False]
    assert result.status == "failed"
    assert marker.read_text().split() == [c.case_id for c in result.cases]

    run = results.load(result.path)
    assert not run.incomplete
    assert run.manifest["status"] == "failed"
    assert run.manifest["seed"] == 7
    assert run.manifest["scenario"]["params"]["value"] == 2.0
    assert run.manifest["scenario"]["sweep"] == {"ticks": [2, 3]}
    assert run.manifest["targets"][0]["type"] == "local"
    assert run.manifest["osbench"]["version"]
    ticks = run.table("ticks")
    assert list(ticks.groupby("case").size()) == [2, 2, 3, 3]
    assert ticks["value"].tolist() == [2.0, 4.0, 2.0, 4.0, 2.0, 4.0, 6.0, 2.0, 4.0, 6.0]
    sla = run.table("sla")
    failed = sla[~sla["passed"]]
    assert set(failed["case"]) == {"ticks=3#1", "ticks=3#2"}
    assert failed["measured"].tolist() == [6.0, 6.0]
    assert run.table("cases")["status"].tolist() == ["completed"] * 4


async def test_all_sla_met_is_completed(tmp_path: Path) -> None:
    sc = scenario("name: t\nkind: tick\nparams: {ticks: 2}\nsla: ['ticks_done == 2']\n")
    result = await Runner(sc, options(tmp_path)).run()
    assert result.status == "completed"
    assert result.cases[0].verdicts[0].measured == 2.0


def test_no_data_fails_the_criterion() -> None:
    import pandas as pd

    from osbench.scenario.sla import parse

    crit = parse("p95(value) < 1", metrics={}, columns={"value": ""})
    verdict = crit.judge({}, pd.DataFrame({"value": []}))
    assert (verdict.measured, verdict.passed) == (None, False)
    assert verdict.describe() == "FAIL p95(value) < 1: measured no data"


async def test_target_error_ends_case_keeps_rows_and_runs_cleanup(tmp_path: Path) -> None:
    marker = tmp_path / "m"
    sc = scenario(f"name: t\nkind: tick\nparams: {{ticks: 5, fail_after: 3, "
                  f"cleanup_marker: {marker}}}\nsla: ['ticks_done >= 1']\n")
    result = await Runner(sc, options(tmp_path)).run()
    assert result.status == "failed"
    case = result.cases[0]
    assert case.status == "error"
    assert case.error == "TargetError: tick 3: injected failure"
    assert case.verdicts == []  # an errored case is not judged
    run = results.load(result.path)
    assert len(run.table("ticks")) == 3
    assert marker.read_text() == "default\n"
    events = run.table("events")
    assert events["event"].tolist() == ["cleanup_done"]


async def test_bug_keeps_traceback_and_still_cleans_up(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.tickkind import TickKind

    marker = tmp_path / "m"
    sc = scenario(f"name: t\nkind: tick\nparams: {{ticks: 2, cleanup_marker: {marker}}}\n")

    async def broken(case, ctx):  # type: ignore[no-untyped-def]
        ctx.add_cleanup(lambda: _append(marker), "marker")
        raise ZeroDivisionError("a bug")

    async def _append(p: Path) -> None:
        p.write_text("cleaned\n")  # noqa: ASYNC240 - tiny test file

    monkeypatch.setattr(TickKind, "run_case", staticmethod(broken))
    with pytest.raises(ZeroDivisionError):
        await Runner(sc, options(tmp_path)).run()
    assert marker.read_text() == "cleaned\n"
    (run_dir,) = (tmp_path / "results").iterdir()
    run = results.load(run_dir)
    assert run.manifest["status"] == "error"
    assert "ZeroDivisionError" in run.table("events")["detail"].iloc[0]


def test_dry_run_plan_lists_cases_and_writes(tmp_path: Path) -> None:
    sc = scenario(BASE.replace("MARKER", "/tmp/x"))
    text = plan(sc, options(tmp_path, seed=3))
    assert text.splitlines() == [
        "scenario 'Tick Sweep' (test.yaml), kind tick, 4 case(s), seed 3",
        f"would write results to {tmp_path / 'results'}/<run-id>/",
        "case 1/4 ticks=2#1 on this machine:",
        "  - append to /tmp/x",
        "case 2/4 ticks=2#2 on this machine:",
        "  - append to /tmp/x",
        "case 3/4 ticks=3#1 on this machine:",
        "  - append to /tmp/x",
        "case 4/4 ticks=3#2 on this machine:",
        "  - append to /tmp/x",
        "SLA: ticks_done >= 2; max(value) <= 4",
    ]
    assert not (tmp_path / "results").exists()


def test_zip_and_matrix_expand_to_product(tmp_path: Path) -> None:
    from osbench.scenario import expand

    sc = scenario("name: t\nkind: tick\nsweep:\n  value: [1.0, 2.0]\n  zip:\n"
                  "    ticks: [1, 2, 3]\n    interval_s: [1s, 2s, 3s]\n")
    cases = expand(sc)
    assert [c.case_id for c in cases] == [
        "value=1.0,ticks=1,interval_s=1.0", "value=1.0,ticks=2,interval_s=2.0",
        "value=1.0,ticks=3,interval_s=3.0", "value=2.0,ticks=1,interval_s=1.0",
        "value=2.0,ticks=2,interval_s=2.0", "value=2.0,ticks=3,interval_s=3.0",
    ]
    assert [(c.params.ticks, c.params.interval_s, c.params.value) for c in cases[:2]] == [
        (1, 1.0, 1.0), (2, 2.0, 1.0)]


async def test_manifest_is_valid_json_while_running(tmp_path: Path) -> None:
    sc = scenario("name: t\nkind: tick\nparams: {ticks: 1}\n")
    result = await Runner(sc, options(tmp_path)).run()
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["status"] == "completed"
    assert manifest["ended_at"] >= manifest["started_at"]
    assert result.path.name.startswith(manifest["started_at"][:4])
    assert "-t-" in result.path.name


async def test_a_target_that_cannot_be_named_is_raised_before_the_run(tmp_path: Path) -> None:
    """An unknown cloud is a user error before anything is written (a run that never
    started leaves no results directory); a cloud that fails once the run has
    started is recorded: tests/boot/test_target_errors.py."""
    from osbench.errors import UserError
    from osbench.scenario import TargetSpec

    sc = scenario("name: t\nkind: boot\nparams: {count: 1}\n")
    with pytest.raises(UserError, match="cloud 'no-such-cloud'"):
        await Runner(sc, options(tmp_path, target=TargetSpec(cloud="no-such-cloud"))).run()
    assert not (tmp_path / "results").exists()
