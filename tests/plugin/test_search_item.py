"""A scenario with `search:` is one pytest item (issue 17): it passes when every
search's capacity is at least `search.require` (without it, when every search
ended by itself), and its junit XML carries capacity, first_fail, points and the
steps. Real pytest processes, as in test_plugin.py: the test-only `tick` kind on
this machine (ticks_done is exactly the searched `ticks`, so the boundary is
known), and a boot search on the embedded simulated cloud."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.plugin.test_plugin import TICK_CONFTEST, run, run_dirs

#: ticks 1, 2, 4 pass, 8 and 6 miss `ticks_done <= 5`, 5 passes: capacity 5, first fail 6.
TICK_SEARCH = """\
name: {name}
kind: tick
params: {{ticks: 1}}
search: {{param: ticks, start: 1, max: 8, resolution: 1{require}}}
sla: ["ticks_done <= 5"]
"""

STEPS = "1 pass, 2 pass, 4 pass, 8 fail, 6 fail, 5 pass"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(TICK_CONFTEST)
    return pytester


def properties(junit: Path) -> dict[str, dict[str, str | None]]:
    return {str(c.get("name")): {p.get("name") or "": p.get("value")
                                 for p in c.iter("property")}
            for c in ET.parse(junit).getroot().iter("testcase")}


def test_one_item_passes_at_require_and_fails_below_it_with_capacity_and_steps(
        project: pytest.Pytester) -> None:
    project.makefile(".yaml", met=TICK_SEARCH.format(name="met", require=", require: 5"),
                     short=TICK_SEARCH.format(name="short", require=", require: 6"),
                     free=TICK_SEARCH.format(name="free", require=""))
    junit = project.path / "junit.xml"

    result = run(project, f"--junitxml={junit}", "-rA")

    # Three files, one item each (not one per case: each search ran 6 cases).
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*_ short[[]capacity-ticks[]] _*",
        "capacity search failed: capacity 5 < require 6",
        "short, run *-short-*:",
        f"  FAIL ticks capacity 5, first_fail 6, status done (6 points); steps: {STEPS}",
        "results: *results/*-short-*",
    ])
    result.stdout.fnmatch_lines(["PASSED free.yaml::free[[]capacity-ticks[]]",
                                 "PASSED met.yaml::met[[]capacity-ticks[]]"])
    assert "Traceback" not in result.stdout.str()

    runs = {r.manifest["scenario"]["name"]: r for r in run_dirs(project)}
    assert len(runs["short"].table("cases")) == 6
    props = properties(junit)
    assert set(props) == {"met[capacity-ticks]", "short[capacity-ticks]",
                          "free[capacity-ticks]"}
    for name, p in props.items():
        run_ = runs[name.split("[")[0]]
        assert p["osbench_run_id"] == run_.run_id
        assert (p["capacity"], p["first_fail"], p["points"], p["status"]) == (
            "5", "6", "6", "done")
        # The steps as the run journaled them.
        steps = run_.table("search")
        assert p["steps"] == ", ".join(f"{v:g} {verdict}" for v, verdict in
                                        zip(steps["value"], steps["verdict"], strict=True))
        assert p["steps"] == STEPS
    failure = ET.parse(junit).getroot().find(".//testcase[@name='short[capacity-ticks]']"
                                             "/failure")
    assert failure is not None
    assert "capacity 5 < require 6" in failure.get("message", "")


def test_a_sweep_is_still_one_item_with_each_search_in_its_properties(
        project: pytest.Pytester) -> None:
    project.makefile(".yaml", swept=TICK_SEARCH.format(name="swept", require="")
                     + "sweep:\n  value: [1.0, 2.0]\n")
    junit = project.path / "junit.xml"

    result = run(project, f"--junitxml={junit}", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["swept.yaml::swept[[]capacity-ticks[]]",
                                 "*1 test collected*"])

    result = run(project, f"--junitxml={junit}", "-m", "tick")
    result.assert_outcomes(passed=1)
    (p,) = properties(junit).values()
    for search in ("value=1.0", "value=2.0"):
        assert p[f"capacity[{search}]"] == "5"
        assert p[f"steps[{search}]"] == STEPS
    (run_,) = run_dirs(project)
    assert sorted(run_.table("search_summary")["search"]) == ["value=1.0", "value=2.0"]


def test_a_search_that_errored_fails_without_require_and_past_it(
        project: pytest.Pytester) -> None:
    # A case that errors (rather than missing its SLA) ends its search: fail_after 1
    # raises at the second tick of the first point. With fail_from 4, ticks 1 and 2
    # pass, then 4 errors: capacity 2 already meets `require: 2`, but the search did
    # not end by itself (the run's own status says so too).
    project.makefile(".yaml", broken="""\
name: broken
kind: tick
params: {ticks: 3}
search: {param: fail_after, start: 1, max: 2, resolution: 1}
sla: ["ticks_done <= 5"]
""", past="""\
name: past
kind: tick
params: {ticks: 1, fail_from: 4}
search: {param: ticks, start: 1, max: 8, resolution: 1, require: 2}
sla: ["ticks_done <= 5"]
""")

    result = run(project)

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "capacity search failed: ended error",
        "  FAIL fail_after capacity none, first_fail none, status error (1 points); "
        "steps: 1 error; error: TargetError: tick 1: injected failure*"])
    result.stdout.fnmatch_lines([
        "capacity search failed: ended error",
        "  FAIL ticks capacity 2, first_fail none, status error (3 points); "
        "steps: 1 pass, 2 pass, 4 error; error: TargetError: tick 3 of 4: injected failure*"])


BOOT_SEARCH = """\
name: boot-search
kind: boot
params:
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  poll_interval_s: 5s
  phone_home_port: 0
  count: 2
search: {param: count, start: 2, max: 8, resolution: 2, require: 8}
sla: ["phone_home_ok_pct == 100"]
"""


def test_boot_search_on_the_simulated_cloud(project: pytest.Pytester) -> None:
    project.makefile(".yaml", boot=BOOT_SEARCH)
    junit = project.path / "junit.xml"

    result = run(project, "--time-scale", "60", f"--junitxml={junit}", "-m", "boot")

    result.assert_outcomes(passed=1)
    (p,) = properties(junit).values()
    assert (p["capacity"], p["first_fail"], p["steps"]) == ("8", "none",
                                                            "2 pass, 4 pass, 8 pass")
    (run_,) = run_dirs(project)
    assert run_.table("instances")["case"].value_counts().to_dict() == {
        "count=2": 2, "count=4": 4, "count=8": 8}
