"""Summary statistics the figures and tables print."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanInterval:
    """Mean of n samples with a two-sided Student-t confidence interval."""

    n: int
    mean: float
    #: Half-width of the interval; NaN with fewer than two samples.
    half_width: float
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_interval(samples: Iterable[float], confidence: float = 0.95) -> MeanInterval:
    """Mean and t-interval of `samples` (NaNs dropped).

    A t-interval, not a normal one: the field method averages ten runs per point
    and the lab three, where z would understate the spread (t(0.975, 2) = 4.30
    against z = 1.96).
    """
    values = np.asarray([v for v in samples if not math.isnan(float(v))], dtype=float)
    n = len(values)
    if n == 0:
        return MeanInterval(0, math.nan, math.nan, confidence)
    mean = float(values.mean())
    if n < 2:
        return MeanInterval(n, mean, math.nan, confidence)
    sem = float(values.std(ddof=1)) / math.sqrt(n)
    quantile = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return MeanInterval(n, mean, quantile * sem, confidence)


def ecdf(values: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and the fraction of samples at or below each (NaNs dropped)."""
    x = np.sort(np.asarray([v for v in values if not math.isnan(float(v))], dtype=float))
    y = np.arange(1, len(x) + 1, dtype=float) / max(len(x), 1)
    return x, y
