"""The pytest plugin end to end: a real pytest process collects scenario files and
runs them on the embedded simulated cloud (boot) or this machine (tick).

Each test runs pytest in a subprocess (`runpytest_subprocess`): the runner
installs asyncio signal handlers and the plugin must be loaded the way a user
gets it (the installed entry point, or the checkout's conftest.py), neither of
which an in-process run would show.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from osbench import results

ROOT = Path(__file__).resolve().parents[2]

#: Makes the test-only `tick` kind available to the child pytest.
TICK_CONFTEST = f"""\
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.support.tickkind import register
register()
"""

#: count=2 meets every criterion; count=3 misses `requested <= 2` (measured 3).
BOOT_PAIR = """\
name: boot-pair
kind: boot
params:
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  poll_interval_s: 5s
  phone_home_port: 0
sweep:
  count: [2, 3]
sla: ["phone_home_ok_pct == 100", "requested <= 2"]
"""

TICKS = """\
name: ticks
kind: tick
params: {ticks: 2}
sweep:
  value: [1.0, 2.0]
sla: ["ticks_done == 2", "max(value) <= 2"]
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(TICK_CONFTEST)
    return pytester


def run(pytester: pytest.Pytester, *args: str | Path) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--osbench-results", str(pytester.path / "results"),
        *[str(a) for a in args])


def run_dirs(pytester: pytest.Pytester) -> list[results.Run]:
    return [results.load(p) for p in sorted((pytester.path / "results").iterdir())]


def test_sla_miss_fails_its_case_with_measured_value_and_junitxml_holds_both(
        project: pytest.Pytester) -> None:
    scenario = project.path / "scenarios" / "boot-pair.yaml"
    scenario.parent.mkdir()
    scenario.write_text(BOOT_PAIR)
    junit = project.path / "junit.xml"

    result = run(project, "scenarios", "--time-scale", "60", f"--junitxml={junit}", "-rA")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ boot-pair[[]count=3[]] _*",
        "SLA failed: requested <= 2: measured 3",
        "case count=3 of boot-pair, run *-boot-pair-*:",
        "  PASS phone_home_ok_pct == 100: measured 100",
        "  FAIL requested <= 2: measured 3",
        "results: *results/*-boot-pair-*",
        "*osbench runs*",
        "boot-pair: failed; results in *",
        "PASSED scenarios/boot-pair.yaml::boot-pair[[]count=2[]]",
        "FAILED scenarios/boot-pair.yaml::boot-pair[[]count=3[]] - SLA failed: *",
    ])
    assert "Traceback" not in result.stdout.str()

    # One run directory for the file, as `osbench run` makes: both cases in it.
    (run_,) = run_dirs(project)
    assert run_.status == "failed"
    assert run_.manifest["targets"][0]["simulated"] is True
    assert run_.manifest["scenario"]["file"] == "scenarios/boot-pair.yaml"
    assert run_.manifest["command"][0] == "pytest"
    assert "--time-scale" in run_.manifest["command"]
    assert run_.table("cases")["case"].tolist() == ["count=2", "count=3"]
    assert len(run_.table("instances")) == 5

    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"boot-pair[count=2]", "boot-pair[count=3]"}
    assert cases["boot-pair[count=2]"].find("failure") is None
    failure = cases["boot-pair[count=3]"].find("failure")
    assert failure is not None
    assert "FAIL requested <= 2: measured 3" in failure.get("message", "")
    for name, case in cases.items():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["osbench_run_id"] == run_.run_id, name
        assert props["osbench_results"] == str(run_.path)
        assert props["metric.phone_home_ok_pct"] == "100.0"
    props = {p.get("name"): p.get("value") for p in cases["boot-pair[count=3]"].iter("property")}
    assert props["metric.requested"] == "3.0"
    assert props["sla: requested <= 2"] == "FAIL requested <= 2: measured 3"


def test_markers_and_keywords_select_and_deselected_cases_do_not_run(
        project: pytest.Pytester) -> None:
    project.makefile(".yaml", ticks=TICKS, boot=BOOT_PAIR)

    result = run(project, "-m", "tick and osbench", "-k", "1.0", "-v")

    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["ticks.yaml::ticks[[]value=1.0[]] PASSED*"])
    (run_,) = run_dirs(project)  # the boot scenario did not run at all
    assert [c["case_id"] for c in run_.manifest["cases"]] == ["value=1.0"]
    assert run_.status == "completed"

    result = run(project, "-m", "boot", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["boot.yaml::boot-pair[[]count=2[]]",
                                 "boot.yaml::boot-pair[[]count=3[]]", "*2/4 tests collected*"])


def test_broken_scenario_is_a_collection_error_and_other_yaml_is_ignored(
        project: pytest.Pytester) -> None:
    project.makefile(".yaml", broken="name: b\nkind: tick\nparms: {ticks: 2}\n", ticks=TICKS)
    # Neither has top-level `name:` and `kind:` both: not scenarios.
    project.makefile(".yml", **{".gitlab-ci": "stages: [test]\nname: x\n"})
    (project.path / "deploy.yaml").write_text("kind: Deployment\nmetadata: {name: x}\n")
    (project.path / "bad.yaml").write_text(": not yaml [\n")

    result = run(project)

    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session
    result.stdout.fnmatch_lines([
        "*ERROR collecting broken.yaml*",
        "broken.yaml:3: parms: unknown key 'parms' (did you mean 'params'?*",
        "*1 error*"])
    assert "Traceback" not in result.stdout.str()
    assert "gitlab" not in result.stdout.str() and "deploy" not in result.stdout.str()

    # Named on the command line, a file is a scenario whatever its keys.
    result = run(project, "deploy.yaml", "ticks.yaml")
    result.stdout.fnmatch_lines(["deploy.yaml:2: metadata: unknown key 'metadata'*"])


def test_errored_case_fails_with_its_error_and_target_errors_fail_every_case(
        project: pytest.Pytester) -> None:
    project.makefile(".yaml", ticks="name: t\nkind: tick\nparams: {ticks: 3, fail_after: 1}\n",
                     boot=BOOT_PAIR)

    result = run(project, "--cloud", "no-such-cloud")

    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*_ boot-pair[[]count=2[]] _*",
        "boot-pair could not run: cloud 'no-such-cloud'*not found*",
        "*_ boot-pair[[]count=3[]] _*",
        "boot-pair could not run: cloud 'no-such-cloud'*not found*",
        "*_ t[[]default[]] _*",
        "case default of t errored: TargetError: tick 1: injected failure",
        "results: *-t-*",
    ])
    assert "Traceback" not in result.stdout.str()


SLOW = """\
name: slow
kind: tick
params: {{ticks: 10000, interval_s: 20ms, announce: true, cleanup_marker: {marker}}}
sweep:
  value: [1.0, 2.0]
"""


def test_sigint_cleans_up_then_stops_pytest(project: pytest.Pytester) -> None:
    marker = project.path / "cleanup.log"
    project.makefile(".yaml", slow=SLOW.format(marker=marker))
    junit = project.path / "junit.xml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "--osbench-results",
         str(project.path / "results"), f"--junitxml={junit}"],
        cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # `-s`: the kind's announcements reach us
        if line.startswith("recorded 5"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == pytest.ExitCode.INTERRUPTED, stdout + stderr
    assert "KeyboardInterrupt" in stdout
    assert "SIGINT: stopping; running cleanup first" in stderr
    assert marker.read_text() == "value=1.0\n"  # cleaned up; the next case never started
    (run_,) = run_dirs(project)
    assert run_.status == "interrupted"
    assert junit.exists()


def test_checkout_conftest_loads_the_plugin_with_or_without_the_entry_point(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The repository's conftest.py, as it is, plus the tick kind.
    pytester.makeconftest((ROOT / "conftest.py").read_text() + TICK_CONFTEST)
    pytester.makefile(".yaml", ticks=TICKS)
    installed = run(pytester)  # the entry point loaded it first: no double registration
    installed.assert_outcomes(passed=1, failed=1)

    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    checkout = run(pytester)
    checkout.assert_outcomes(passed=1, failed=1)
    checkout.stdout.fnmatch_lines(["SLA failed: max(value) <= 2: measured 4"])
    assert len(list((pytester.path / "results").iterdir())) == 2


def test_the_entry_point_is_declared() -> None:
    from importlib.metadata import entry_points

    import osbench.pytest_plugin

    (ep,) = [ep for ep in entry_points(group="pytest11") if ep.name == "osbench"]
    assert ep.load() is osbench.pytest_plugin
