"""Capacity search, the strategy alone: which value to try next, from the verdicts so far.

Pure and deterministic: no clock, no cloud. The runner asks `next_value()`,
runs that point (its repeats, each a case), and tells `record(value, passed)`
the point's verdict under the pass rule. Two phases:

1. **grow**: start, then x `factor` (rounded up, never past `max`), until the
   first failing point, or `max` passes;
2. **bisect** between the largest passing value and the smallest failing one
   until they are at most `resolution` apart.

So it never evaluates beyond `max`, and with factor 2 it uses at most
`1 + ceil(log2(max/start)) + ceil(log2((max-start)/resolution))` points
(`max_points`). When `start` itself fails there is no capacity at or above it:
`capacity` is None and `first_fail` is `start`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Phase = Literal["grow", "bisect"]


@dataclass(frozen=True)
class PassRule:
    """A point passes when at least `need` of its `repeats` cases pass their SLA."""

    need: int
    repeats: int

    def __post_init__(self) -> None:
        if not 1 <= self.need <= self.repeats:
            raise ValueError(f"a point needs between 1 and {self.repeats} passing repeats, "
                             f"not {self.need}")

    def judge(self, passed: int) -> bool:
        return passed >= self.need

    def decided(self, passed: int, failed: int) -> bool:
        """Whether the verdict is already certain (the remaining repeats can be skipped)."""
        return passed >= self.need or failed > self.repeats - self.need

    @property
    def text(self) -> str:
        return "all" if self.need == self.repeats else f"{self.need} of {self.repeats}"


@dataclass(frozen=True)
class Step:
    """One point: the value tried, in which phase, and its verdict."""

    value: float
    phase: Phase
    passed: bool


def max_points(start: float, maximum: float, resolution: float, factor: float = 2.0) -> int:
    """The most points a search can evaluate (before repeats)."""
    grow = 1 + (math.ceil(math.log(maximum / start, factor) - 1e-9) if maximum > start else 0)
    span = maximum - start
    bisect = math.ceil(math.log2(span / resolution) - 1e-9) if span > resolution else 0
    return grow + max(0, bisect)


@dataclass
class Strategy:
    """Grow geometrically to the first failure, then bisect to `resolution`."""

    start: float
    maximum: float
    resolution: float
    factor: float = 2.0
    #: Values are whole numbers (counts): growth rounds up, midpoints round down.
    integer: bool = True
    steps: list[Step] = field(default_factory=list)
    _pass: float | None = None
    _fail: float | None = None
    _pending: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.start <= self.maximum:
            raise ValueError(f"need 0 < start <= max, got start {self.start}, max "
                             f"{self.maximum}")
        if self.resolution <= 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        if self.factor <= 1:
            raise ValueError(f"factor must be > 1, got {self.factor}")

    @property
    def capacity(self) -> float | None:
        """The largest passing value so far."""
        return self._pass

    @property
    def first_fail(self) -> float | None:
        """The smallest failing value so far."""
        return self._fail

    @property
    def phase(self) -> Phase:
        return "grow" if self._fail is None else "bisect"

    def _grown(self, value: float) -> float:
        nxt = value * self.factor
        if self.integer:
            nxt = max(math.ceil(nxt - 1e-9), int(value) + 1)
        return min(nxt, self.maximum)

    def _mid(self, low: float, high: float) -> float:
        return (int(low) + int(high)) // 2 if self.integer else (low + high) / 2

    def next_value(self) -> float | None:
        """The next value to try, or None when the search is over."""
        if self._pending is not None:
            return self._pending
        if self._fail is None:  # growing
            if self._pass is None:
                value: float = self.start
            elif self._pass >= self.maximum:
                return None  # max passes: the capacity is at least max
            else:
                value = self._grown(self._pass)
        else:
            if self._pass is None:
                return None  # start failed
            if self._fail - self._pass <= self.resolution:
                return None
            value = self._mid(self._pass, self._fail)
            if value <= self._pass or value >= self._fail:
                return None  # integers closer than 2 apart: nothing between them
        self._pending = value
        return value

    def record(self, value: float, passed: bool) -> None:
        """The verdict of the point `next_value` returned."""
        if value != self._pending:
            raise ValueError(f"recorded {value}, but the point asked for was {self._pending}")
        self.steps.append(Step(value, self.phase, passed))
        self._pending = None
        if passed:
            self._pass = value if self._pass is None else max(self._pass, value)
        else:
            self._fail = value if self._fail is None else min(self._fail, value)

    @property
    def done(self) -> bool:
        return self.next_value() is None
