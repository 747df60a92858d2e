"""What the runner runs next: a fixed list of cases, or a capacity search that picks
each point from the verdicts of the ones before.

A `FixedPlan` is the scenario's expanded sweep. A `SearchPlan` runs one search
per sweep point (the sweep may vary anything but the searched parameter, e.g.
the simulated profile): each point is `repeats` cases of the searched value,
judged by the pass rule on the scenario's SLA. A point's remaining repeats are
skipped once its verdict is certain. A case that errors (rather than missing
its SLA) ends its search with that error; a signal ends every search (the
point cut short is journaled with verdict `error` or `interrupted`, and a
search that had not started gets no summary); the budget, when set, stops a
search from starting another point.

Each point is journaled as a `search` row when it is decided (value, phase,
verdicts, the criteria each failing repeat missed, the measured values'
spread, and, with monitors, each failing repeat's top bottleneck), and each
search ends with one `search_summary` row: capacity, first_fail, points,
cases and why it stopped. A search killed before its summary still has its
points: `osbench.results` readers treat the missing summary as incomplete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from osbench.scenario import Case, Scenario, expand
from osbench.scenario.search import SearchSpec, set_param
from osbench.search import Strategy, max_points

__all__ = ["FixedPlan", "Plan", "SearchPlan", "make", "max_points"]

if TYPE_CHECKING:
    from osbench.runner import CaseOutcome

Record = Callable[[str, Mapping[str, Any]], None]


class Plan(Protocol):
    def next_case(self, now: float) -> Case | None:
        """The next case to run (`now` on the target's clock), or None when done."""
        ...

    def record(self, case: Case, outcome: CaseOutcome, now: float) -> float:
        """The case's outcome; returns seconds to wait before the next case."""
        ...

    def stop(self, reason: str) -> None:
        """Stop: no further case (a signal, an error of the run)."""
        ...

    def total(self) -> int:
        """The most cases the plan may run (for progress)."""
        ...

    def describe(self) -> dict[str, Any]:
        """For the manifest: the cases up front, or the search and its bound."""
        ...

    def checks_before(self, case: Case) -> Case | None:
        """The case whose preflight must pass before `case` runs (a search's max,
        before its first point: quotas), or None."""
        ...

    def checks_failed(self, error: str) -> None:
        """The preflight `checks_before` asked for failed: skip what it guarded."""
        ...

    def met(self, outcomes: Sequence[CaseOutcome]) -> bool:
        """Whether the run passed, from the outcomes of all its cases."""
        ...

    #: Each ended search's `search_summary` row (none for a fixed plan).
    summaries: list[dict[str, Any]]


@dataclass
class FixedPlan:
    """The expanded sweep, in order."""

    cases: list[Case]
    _next: int = 0
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def next_case(self, now: float) -> Case | None:
        if self._next >= len(self.cases):
            return None
        self._next += 1
        return self.cases[self._next - 1]

    def record(self, case: Case, outcome: CaseOutcome, now: float) -> float:
        return 0.0

    def stop(self, reason: str) -> None:
        self._next = len(self.cases)

    def total(self) -> int:
        return len(self.cases)

    def describe(self) -> dict[str, Any]:
        return {"cases": [{"case_id": c.case_id, "sweep": dict(c.sweep_values),
                           "repeat": c.repeat} for c in self.cases]}

    def checks_before(self, case: Case) -> Case | None:
        return None  # each kind's own checks run inside its case

    def checks_failed(self, error: str) -> None:
        raise AssertionError("a fixed plan asks for no checks before its cases")

    def met(self, outcomes: Sequence[CaseOutcome]) -> bool:
        """Every case completed within its SLA."""
        return all(o.status == "completed" and o.sla_passed for o in outcomes)


@dataclass
class _Point:
    #: The strategy's value, and the parameter's (an int for counts).
    raw: float
    value: int | float
    passed: int = 0
    failed: int = 0
    cases: list[str] = field(default_factory=list)
    misses: list[list[str]] = field(default_factory=list)
    measured: dict[str, list[float]] = field(default_factory=dict)
    bottlenecks: list[str] = field(default_factory=list)


@dataclass
class _Search:
    """One sweep point's search."""

    base: Case
    strategy: Strategy
    started: float | None = None
    point: _Point | None = None
    points: int = 0
    cases: int = 0
    status: str | None = None  # why it ended
    error: str | None = None
    summarized: bool = False


class SearchPlan:
    """A capacity search per sweep point (see the module docstring)."""

    def __init__(self, scenario: Scenario, spec: SearchSpec, record: Record,
                 only: frozenset[str] | None = None) -> None:
        self.spec = spec
        self.scenario = scenario
        self._record = record
        self._searches = [
            _Search(base, Strategy(spec.start, spec.max, spec.resolution, spec.factor,
                                   integer=spec.integer))
            for base in expand(scenario) if only is None or base.case_id in only]
        self._index = 0
        self._current = 0
        #: Each ended search's `search_summary` row, in order.
        self.summaries: list[dict[str, Any]] = []

    # -- the cases --------------------------------------------------------------------
    def _case(self, search: _Search, value: int | float, repeat: int) -> Case:
        base = search.base
        values = {**base.sweep_values, self.spec.param: value}
        base_id = ",".join(f"{k}={v}" for k, v in values.items())
        case_id = base_id if self.spec.repeats == 1 else f"{base_id}#{repeat}"
        case = Case(index=self._index, case_id=case_id,
                    params=set_param(base.params, self.spec.param, value), target=base.target,
                    sweep_values=values, repeat=repeat)
        self._index += 1
        return case

    @staticmethod
    def at(spec: SearchSpec, case: Case, value: float) -> Case:
        """`case` with the searched parameter at `value`."""
        v = spec.value(value)
        return dataclasses.replace(case, params=set_param(case.params, spec.param, v),
                                   case_id=f"{case.case_id} ({spec.param}={v})")

    def max_case(self, case: Case) -> Case:
        """`case` at the search's max (for checks before the first point: quotas)."""
        return self.at(self.spec, case, self.spec.max)

    def next_case(self, now: float) -> Case | None:
        while self._current < len(self._searches):
            search = self._searches[self._current]
            case = self._next_of(search, now)
            if case is not None:
                return case
            self._summary(search)
            self._current += 1
        return None

    def checks_before(self, case: Case) -> Case | None:
        """Before a search's first point: the search at its max (quotas for max)."""
        search = self._searches[self._current]
        return self.max_case(case) if search.cases == 0 and search.points == 1 else None

    def checks_failed(self, error: str) -> None:
        """The current search cannot start (e.g. quotas too small for max)."""
        search = self._searches[self._current]
        search.status, search.error, search.point = "error", error, None
        search.points = 0

    def total(self) -> int:
        """The most cases the plan may run."""
        bound = max_points(self.spec.start, self.spec.max, self.spec.resolution,
                           self.spec.factor)
        return bound * self.spec.repeats * len(self._searches)

    def _next_of(self, search: _Search, now: float) -> Case | None:
        if search.status is not None:
            return None
        if search.started is None:
            search.started = now
        point = search.point
        if point is not None:  # more repeats of the current point
            return self._case(search, point.value, point.passed + point.failed + 1)
        value = search.strategy.next_value()
        if value is None:
            search.status = "done"
            return None
        budget = self.spec.budget
        if budget is not None and now - search.started >= budget:
            search.status = "budget"
            return None
        search.point = _Point(value, self.spec.value(value))
        search.points += 1
        return self._case(search, search.point.value, 1)

    def record(self, case: Case, outcome: CaseOutcome, now: float) -> float:
        search = self._searches[self._current]
        point = search.point
        assert point is not None, "a search case without its point"
        search.cases += 1
        point.cases.append(case.case_id)
        if outcome.status != "completed":
            search.status = "error" if outcome.status == "error" else "interrupted"
            search.error = outcome.error
            self._journal_point(search, point, verdict=search.status)
            search.point = None
            return 0.0
        if outcome.sla_passed:
            point.passed += 1
        else:
            point.failed += 1
            point.misses.append([v.criterion.text for v in outcome.verdicts if not v.passed])
            if outcome.bottleneck:
                point.bottlenecks.append(outcome.bottleneck)
        for v in outcome.verdicts:
            if v.measured is not None:
                point.measured.setdefault(v.criterion.text, []).append(v.measured)
        if not self.spec.pass_rule.decided(point.passed, point.failed):
            return 0.0
        passed = self.spec.pass_rule.judge(point.passed)
        search.strategy.record(point.raw, passed)
        self._journal_point(search, point, verdict="pass" if passed else "fail")
        search.point = None
        return self.spec.cooldown

    def _journal_point(self, search: _Search, point: _Point, verdict: str) -> None:
        spread = {text: max(values) - min(values) for text, values in point.measured.items()
                  if len(values) > 1 and all(v == v for v in values)}
        self._record("search", {
            "search": search.base.case_id, "param": self.spec.param, "value": point.value,
            "phase": search.strategy.phase if verdict not in ("pass", "fail") else
            search.strategy.steps[-1].phase, "verdict": verdict,
            "passed": point.passed, "failed": point.failed, "rule": self.spec.pass_rule.text,
            "cases": point.cases, "missed": point.misses, "measured": point.measured,
            "spread": spread, "bottlenecks": point.bottlenecks})

    def _summary(self, search: _Search) -> None:
        strategy = search.strategy
        row = {
            "search": search.base.case_id, "param": self.spec.param,
            "capacity": strategy.capacity, "first_fail": strategy.first_fail,
            "start": self.spec.start, "max": self.spec.max,
            "resolution": self.spec.resolution, "points": search.points,
            "cases": search.cases, "status": search.status, "error": search.error,
            "require": self.spec.require}
        search.summarized = True
        self.summaries.append(row)
        self._record("search_summary", row)

    def met(self, outcomes: Sequence[CaseOutcome] = ()) -> bool:
        """Every search ended by itself (or at its budget) with capacity >= require:
        failing points are what a search looks for, so `outcomes` do not decide."""
        require = self.spec.require
        return bool(self.summaries) and all(
            s["status"] in ("done", "budget") and (
                require is None or (s["capacity"] is not None and s["capacity"] >= require))
            for s in self.summaries)

    def stop(self, reason: str) -> None:
        """End every search now; the running one journals its summary."""
        while self._current < len(self._searches):
            search = self._searches[self._current]
            if search.started is not None and not search.summarized:
                search.status = search.status or reason
                self._summary(search)
            self._current += 1

    def describe(self) -> dict[str, Any]:
        bound = max_points(self.spec.start, self.spec.max, self.spec.resolution,
                           self.spec.factor)
        return {"cases": [], "search": {
            **self.spec.as_dict(),
            "searches": [s.base.case_id for s in self._searches],
            "max_points": bound, "max_cases": bound * self.spec.repeats}}


def make(scenario: Scenario, only: frozenset[str] | None, record: Record) -> Plan:
    """The plan of `scenario`; `only`: the case ids to run (a search: its sweep points)."""
    if scenario.search is None:
        return FixedPlan([c for c in expand(scenario) if only is None or c.case_id in only])
    return SearchPlan(scenario, scenario.search, record, only)
