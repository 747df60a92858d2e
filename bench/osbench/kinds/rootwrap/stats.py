"""Statistics of the rootwrap probe: one mode's latency summary, and a mode's
slowdown against `direct` with its uncertainty.

Pure functions of arrays of latencies (milliseconds); the tests check them
against numpy/scipy on fixed arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Outlier rule (Iglewicz and Hoaglin's modified z-score): a sample is an
#: outlier when |x - median| > 3.5 * 1.4826 * MAD. 1.4826 makes the MAD
#: estimate the standard deviation of normal data; 3.5 is their cut-off. Unlike
#: mean +- k*stddev it is not inflated by the outliers it looks for (one 700 ms
#: hiccup among 4 ms calls).
MAD_SCALE = 1.4826
MAD_CUTOFF = 3.5

#: Bootstrap resamples for the ratio's interval: enough that the 2.5th and
#: 97.5th percentiles move by well under 1 % between seeds.
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Summary:
    """One mode's latencies: order statistics, moments and MAD outliers (ms)."""

    n: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    #: Sample standard deviation (ddof=1); NaN for fewer than two samples.
    stddev_ms: float
    mad_ms: float
    outliers: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mad_outliers(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """A boolean mask of the outliers of `values` by the MAD rule above.

    With MAD = 0 (more than half the samples equal) only values different
    from the median are outliers.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    median = np.median(x)
    mad = float(np.median(np.abs(x - median)))
    mask: np.ndarray = np.abs(x - median) > MAD_CUTOFF * MAD_SCALE * mad
    return mask


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    """min, p50, p90, p99 (numpy's linear interpolation), mean, stddev, MAD outliers."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, 0)
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    median = float(np.median(x))
    return Summary(
        n=int(x.size), min_ms=float(x.min()), p50_ms=float(p50), p90_ms=float(p90),
        p99_ms=float(p99), mean_ms=float(x.mean()),
        stddev_ms=float(x.std(ddof=1)) if x.size > 1 else float("nan"),
        mad_ms=float(np.median(np.abs(x - median))),
        outliers=int(mad_outliers(x).sum()))


@dataclass(frozen=True)
class Ratio:
    """median(mode) / median(direct), with a bootstrap 95 % confidence interval."""

    ratio: float
    ci_low: float
    ci_high: float


def median_ratio(mode: Sequence[float] | np.ndarray, direct: Sequence[float] | np.ndarray, *,
                 seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> Ratio:
    """The slowdown of `mode` against `direct`, medians (robust to the odd hiccup).

    Uncertainty: percentile bootstrap. Each resample draws both arrays with
    replacement, independently (the modes are interleaved, not paired call by
    call), and takes the ratio of the two medians; the interval is the 2.5th
    and 97.5th percentile of those ratios. `seed` fixes the draws, so a run's
    interval can be recomputed exactly from its journaled samples.
    """
    a = np.asarray(mode, dtype=float)
    b = np.asarray(direct, dtype=float)
    if a.size == 0 or b.size == 0:
        nan = float("nan")
        return Ratio(nan, nan, nan)
    ratio = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    boot_a = np.median(rng.choice(a, size=(resamples, a.size), replace=True), axis=1)
    boot_b = np.median(rng.choice(b, size=(resamples, b.size), replace=True), axis=1)
    low, high = np.percentile(boot_a / boot_b, [2.5, 97.5])
    return Ratio(ratio, float(low), float(high))
