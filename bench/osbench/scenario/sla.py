"""SLA criteria: `phone_home_ok_pct >= 99.5`, `p95(time_to_phone_home_s) <= 600`.

A criterion compares either a scalar metric of the kind (computed from the
case's tables) or an aggregate of one numeric column of the kind's sample
table with a threshold. Durations may be written with units when the column
or metric is in seconds (`p95(time_to_phone_home_s) <= 10m`).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from osbench import stats
from osbench.scenario.schema import did_you_mean, parse_duration
from osbench.scenario.source import short_repr

if TYPE_CHECKING:  # judging imports pandas; parsing a criterion does not
    import pandas as pd

_EXPR = re.compile(
    r"""^\s*(?:(?P<func>[A-Za-z][A-Za-z0-9.]*)\(\s*(?P<column>[A-Za-z_]\w*)\s*\)
            |(?P<metric>[A-Za-z_]\w*))
        \s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>\S+)\s*$""",
    re.VERBOSE,
)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

AGGREGATE_NAMES = (*stats.AGGREGATES, "p50", "p90", "p95", "p99", "pNN")


class SlaSyntaxError(ValueError):
    """A criterion that does not parse or names an unknown metric; message says why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Criterion:
    """One parsed SLA criterion."""

    text: str
    metric: str  # scalar metric name, or column name when `aggregate` is set
    op: str
    threshold: float
    aggregate: str | None = None

    @property
    def label(self) -> str:
        """`p95(time_to_phone_home_s)` or `phone_home_ok_pct`."""
        return f"{self.aggregate}({self.metric})" if self.aggregate else self.metric

    def measure(self, metrics: Mapping[str, float], samples: pd.DataFrame) -> float | None:
        """The measured value, or None when there is nothing to measure."""
        if self.aggregate is None:
            value = metrics.get(self.metric)
            return None if value is None or math.isnan(value) else float(value)
        if self.metric not in samples.columns:
            return None
        import pandas as pd

        column = pd.to_numeric(samples[self.metric], errors="coerce").dropna().to_numpy(float)
        if self.aggregate == "count":
            return float(len(column))
        if len(column) == 0:
            return None
        value = stats.aggregate(self.aggregate, column)
        return None if math.isnan(value) else value

    def judge(self, metrics: Mapping[str, float], samples: pd.DataFrame) -> Verdict:
        measured = self.measure(metrics, samples)
        passed = measured is not None and OPERATORS[self.op](measured, self.threshold)
        return Verdict(criterion=self, measured=measured, passed=passed)


@dataclass(frozen=True)
class Verdict:
    """A criterion with what was measured; no data counts as a failure."""

    criterion: Criterion
    measured: float | None
    passed: bool

    def describe(self) -> str:
        got = "no data" if self.measured is None else f"{self.measured:.6g}"
        mark = "PASS" if self.passed else "FAIL"
        c = self.criterion
        return f"{mark} {c.label} {c.op} {c.threshold:g}: measured {got}"


def parse(text: str, *, metrics: Mapping[str, str], columns: Mapping[str, str]) -> Criterion:
    """Parse one criterion against the kind's metric and column names."""
    if not isinstance(text, str):
        raise SlaSyntaxError(f"expected a criterion string, got {short_repr(text)}")
    shown = short_repr(text)
    match = _EXPR.match(text)
    if not match:
        raise SlaSyntaxError(
            f"cannot parse SLA criterion {shown}",
            hint="write `METRIC OP NUMBER` or `AGG(COLUMN) OP NUMBER`, "
            "e.g. `phone_home_ok_pct >= 99.5` or `p95(time_to_phone_home_s) <= 600`",
        )
    func, column, metric = match.group("func"), match.group("column"), match.group("metric")
    if func is not None:
        if not stats.is_aggregate(func):
            raise SlaSyntaxError(
                f"unknown aggregate {func!r} in {shown}",
                hint=did_you_mean(func, [a for a in AGGREGATE_NAMES if a != "pNN"])
                + " (or any percentile pNN)",
            )
        if column not in columns:
            raise SlaSyntaxError(
                f"unknown column {column!r} in {shown}", hint=did_you_mean(column, columns)
            )
        name, unit_name = column, column
    else:
        if metric not in metrics:
            raise SlaSyntaxError(
                f"unknown metric {metric!r} in {shown}", hint=did_you_mean(metric, metrics)
            )
        name, unit_name = metric, metric
    raw = match.group("value")
    try:
        threshold = float(raw)
    except ValueError:
        if not unit_name.endswith("_s"):
            raise SlaSyntaxError(f"threshold {short_repr(raw)} in {shown} is not a number"
                                 ) from None
        try:
            threshold = parse_duration(raw)
        except ValueError:
            raise SlaSyntaxError(
                f"threshold {short_repr(raw)} in {shown} is neither a number nor a duration"
            ) from None
    if not math.isfinite(threshold):  # inf, nan, 1e999: a criterion that cannot mean anything
        raise SlaSyntaxError(f"threshold {short_repr(raw)} in {shown} is not a "
                             "finite number")
    return Criterion(text=text, metric=name, op=match.group("op"), threshold=threshold,
                     aggregate=func)
