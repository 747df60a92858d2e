"""The capacity search's strategy against synthetic pass/fail functions (issue 17):
it finds the boundary to within the resolution, within the bound on points, and
never evaluates beyond max; with a noisy boundary and repeats, within the noise."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osbench.search import PassRule, Strategy, max_points


def run(strategy: Strategy, passes: callable) -> list[float]:  # type: ignore[valid-type]
    tried = []
    while (value := strategy.next_value()) is not None:
        assert value <= strategy.maximum  # never beyond max
        tried.append(value)
        strategy.record(value, passes(value))
        assert len(tried) <= 200, tried  # bounded however the rule answers
    return tried


@settings(max_examples=400, deadline=None)
@given(start=st.integers(1, 500), span=st.integers(0, 20_000), resolution=st.integers(1, 300),
       boundary=st.integers(0, 25_000))
def test_a_sharp_boundary_is_found_within_the_resolution(start: int, span: int,
                                                         resolution: int, boundary: int) -> None:
    maximum = start + span
    strategy = Strategy(start, maximum, resolution)
    tried = run(strategy, lambda v: v <= boundary)
    assert len(tried) <= max_points(start, maximum, resolution)
    assert len(set(tried)) == len(tried)  # no point twice
    if boundary < start:
        assert strategy.capacity is None and strategy.first_fail == start
    elif boundary >= maximum:
        assert strategy.capacity == maximum and strategy.first_fail is None
    else:
        assert strategy.capacity is not None and strategy.first_fail is not None
        assert strategy.capacity <= boundary < strategy.first_fail
        assert strategy.first_fail - strategy.capacity <= resolution


def test_the_bound_of_the_issue() -> None:
    # 10 -> 1000 by doubling, to 10: 10, 20, ..., 640, 1000, then bisect 640..1000.
    assert max_points(10, 1000, 10) == 1 + math.ceil(math.log2(100)) + math.ceil(math.log2(99))
    strategy = Strategy(10, 1000, 10)
    tried = run(strategy, lambda v: v <= 999)
    assert tried[:8] == [10, 20, 40, 80, 160, 320, 640, 1000]
    assert strategy.capacity is not None and 990 <= strategy.capacity <= 999
    assert len(tried) <= max_points(10, 1000, 10)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), boundary=st.integers(40, 900),
       rule=st.sampled_from([PassRule(2, 3), PassRule(3, 3), PassRule(3, 5)]))
def test_a_noisy_boundary_with_repeats_is_found_within_the_noise(
        seed: int, boundary: int, rule: PassRule) -> None:
    """Each repeat passes surely below boundary - 10%, fails surely above boundary
    + 10%, and in between passes with a probability that falls linearly."""
    rng = random.Random(seed)
    low, high = 0.9 * boundary, 1.1 * boundary

    def one(value: float) -> bool:
        if value <= low:
            return True
        if value >= high:
            return False
        return rng.random() < (high - value) / (high - low)

    def point(value: float) -> bool:
        passed = failed = 0
        while not rule.decided(passed, failed):
            if one(value):
                passed += 1
            else:
                failed += 1
        return rule.judge(passed)

    strategy = Strategy(10, 1000, 5)
    tried = run(strategy, point)
    assert len(tried) <= max_points(10, 1000, 5)
    assert strategy.capacity is not None and strategy.first_fail is not None
    assert strategy.first_fail - strategy.capacity <= 5
    assert low - 5 <= strategy.capacity <= high, (strategy.capacity, boundary)


def test_non_integer_values_bisect_to_the_resolution() -> None:
    strategy = Strategy(0.5, 8.0, 0.1, integer=False)
    run(strategy, lambda v: v <= 3.3)
    assert strategy.capacity is not None and strategy.first_fail is not None
    assert strategy.capacity <= 3.3 < strategy.first_fail <= strategy.capacity + 0.1


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"start": 10, "maximum": 5, "resolution": 1}, "start <= max"),
    ({"start": 0, "maximum": 5, "resolution": 1}, "0 < start"),
    ({"start": 1, "maximum": 5, "resolution": 0}, "resolution must be > 0"),
    ({"start": 1, "maximum": 5, "resolution": 1, "factor": 1.0}, "factor must be > 1"),
])
def test_impossible_searches_are_refused(kwargs: dict[str, float], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Strategy(**kwargs)  # type: ignore[arg-type]


def test_pass_rules() -> None:
    rule = PassRule(2, 3)
    assert rule.text == "2 of 3" and PassRule(3, 3).text == "all"
    assert rule.decided(2, 0) and rule.decided(0, 2) and not rule.decided(1, 1)
    assert rule.judge(2) and not rule.judge(1)
    with pytest.raises(ValueError):
        PassRule(4, 3)
