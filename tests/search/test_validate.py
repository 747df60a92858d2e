"""A `search:` section that cannot run is a validate error with file, key path and fix
(issue 17)."""

from __future__ import annotations

import pytest

from osbench.errors import ScenarioError
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text

BASE = "name: s\nkind: boot\nparams: {count: 10}\n"


@pytest.mark.parametrize(("extra", "where", "says"), [
    ("search: {param: count, start: 100, max: 10, resolution: 5}", "search.start",
     "start 100 is above max 10"),
    ("search: {param: count, start: 1, max: 10, resolution: 0}", "search.resolution",
     "must be > 0"),
    ("search: {param: count, start: 1, max: 10, resolution: -2}", "search.resolution",
     "must be > 0"),
    ("search: {param: image, start: 1, max: 10, resolution: 1}", "search.param",
     "'image' is not a number"),
    ("search: {param: cuont, start: 1, max: 10, resolution: 1}", "search.param",
     "did you mean 'count'"),
    ("search: {param: batch.size, start: 1, max: 10, resolution: 1}", "search.param",
     "params.batch is not set"),
    ("search: {param: count, start: 1.5, max: 10, resolution: 1}", "search.start",
     "not a whole number"),
    ("search: {param: count, start: 1, max: 10, resolution: 1, repeats: 3, pass: 2 of 4}",
     "search.pass", "search.repeats is 3"),
    ("search: {param: count, start: 1, max: 10, resolution: 1, pass: most}", "search.pass",
     "not a pass rule"),
    ("search: {param: count, start: 1, max: 10, resolution: 1}\nrepeat: 2", "repeat",
     "use `search.repeats`"),
    ("search: {param: count, start: 1, max: 10, resolution: 1, factr: 3}", "search.factr",
     "did you mean 'factor'"),
])
def test_a_search_that_cannot_run_is_refused(extra: str, where: str, says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(load_text(BASE + extra + "\n", "search.yaml"))
    text = f"{info.value} {info.value.hint or ''}"
    assert "search.yaml" in text and where in text and says in text, text


def test_a_searched_key_cannot_be_swept_too() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(load_text(
            "name: s\nkind: boot\nsweep: {count: [1, 2]}\n"
            "search: {param: count, start: 1, max: 10, resolution: 1}\n", "search.yaml"))
    text = f"{info.value} {info.value.hint or ''}"
    assert "search.yaml" in text and "sweep.count" in text and "both swept and searched" in (
        text) and "remove `sweep.count`" in text, text


def test_cleanup_that_keeps_servers_cannot_be_searched() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(load_text(
            "name: s\nkind: boot\nparams: {count: 10, cleanup: never}\n"
            "search: {param: count, start: 1, max: 10, resolution: 1}\n", "search.yaml"))
    assert "params.cleanup" in str(info.value) and "always" in (info.value.hint or "")


def test_a_valid_search_keeps_its_rule_and_a_sweep_of_other_keys() -> None:
    scenario = parse_scenario(load_text(
        "name: s\nkind: boot\nparams: {count: 10, batch: {size: 5}}\n"
        "sweep: {sim_profile: [small-pets, big-pets]}\n"
        "search: {param: batch.size, start: 5, max: 40, resolution: 5, repeats: 3, "
        "pass: 2 of 3, cooldown: 30s, budget: 1h, require: 20}\n", "search.yaml"))
    search = scenario.search
    assert search is not None and search.param == "batch.size" and search.integer
    assert search.pass_rule.text == "2 of 3" and search.cooldown == 30 and search.budget == 3600
    assert scenario.as_dict()["search"]["pass"] == "2 of 3"
