"""Every statistical computation of osbench, as pure functions: numbers in, numbers out.

- Reports: `mean_interval` (mean with a Student-t interval), `ecdf`.
- Kinds: `summarize` (order statistics, moments, MAD outliers), `mad_outliers`,
  `median_ratio` (slowdown with a seeded percentile-bootstrap interval).
- SLA criteria: `aggregate` (`min`, `p95`, `stddev`, ... of one sample column),
  `is_aggregate`, `AGGREGATES`.
- `osbench compare`: `median`, `ratio`, `mann_whitney_p`, `fisher_exact_p`.

No I/O and no DataFrames: callers turn their tables into arrays of floats.
Percentiles are numpy's default (linear interpolation) everywhere.

numpy and scipy are imported inside the functions, not here: `osbench validate`
parses SLA criteria with `is_aggregate` and must not load either (see
tests/spine/test_light_imports.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    Values: TypeAlias = Sequence[float] | np.ndarray

#: Outlier rule (Iglewicz and Hoaglin's modified z-score): a sample is an
#: outlier when |x - median| > 3.5 * 1.4826 * MAD. 1.4826 makes the MAD
#: estimate the standard deviation of normal data; 3.5 is their cut-off. Unlike
#: mean +- k*stddev it is not inflated by the outliers it looks for (one 700 ms
#: hiccup among 4 ms calls).
MAD_SCALE = 1.4826
MAD_CUTOFF = 3.5

#: Bootstrap resamples for `median_ratio`'s interval: enough that the 2.5th and
#: 97.5th percentiles move by well under 1 % between seeds.
BOOTSTRAP_RESAMPLES = 2000

#: The named aggregates of `aggregate`; any percentile `pNN` (p0 to p100,
#: decimals allowed: p99.9) is one too.
AGGREGATES = ("min", "max", "mean", "median", "stddev", "sum", "count")
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")


# -- moments and order statistics -------------------------------------------------------


def stddev(values: Values) -> float:
    """Sample standard deviation (ddof=1); NaN for fewer than two values."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    return float(x.std(ddof=1)) if x.size > 1 else math.nan


def median(values: Values) -> float:
    import numpy as np

    return float(np.median(np.asarray(values, dtype=float)))


def is_aggregate(name: str) -> bool:
    """Whether `aggregate` knows `name` (without importing numpy: validation asks)."""
    return name in AGGREGATES or _PERCENTILE.fullmatch(name) is not None


def aggregate(name: str, values: Values) -> float:
    """Aggregate `name` (one of AGGREGATES, or a percentile `pNN`) of `values`.

    KeyError for an unknown name. Callers check for no values first: then count
    and sum are 0, mean, median and stddev NaN (numpy warns), and min, max and
    the percentiles raise numpy's ValueError or IndexError.
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    match name:
        case "min":
            return float(np.min(x))
        case "max":
            return float(np.max(x))
        case "mean":
            return float(np.mean(x))
        case "median":
            return float(np.median(x))
        case "stddev":
            return stddev(x)
        case "sum":
            return float(np.sum(x))
        case "count":
            return float(len(x))
    percentile = _PERCENTILE.fullmatch(name)
    if not percentile:
        raise KeyError(name)
    return float(np.percentile(x, float(percentile.group(1))))


# -- summaries for figures and tables ----------------------------------------------------


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
    import numpy as np
    from scipy import stats as sps

    values = np.asarray([v for v in samples if not math.isnan(float(v))], dtype=float)
    n = len(values)
    if n == 0:
        return MeanInterval(0, math.nan, math.nan, confidence)
    mean = float(values.mean())
    if n < 2:
        return MeanInterval(n, mean, math.nan, confidence)
    sem = stddev(values) / math.sqrt(n)
    quantile = float(sps.t.ppf(0.5 + confidence / 2, df=n - 1))
    return MeanInterval(n, mean, quantile * sem, confidence)


def ecdf(values: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and the fraction of samples at or below each (NaNs dropped)."""
    import numpy as np

    x = np.sort(np.asarray([v for v in values if not math.isnan(float(v))], dtype=float))
    y = np.arange(1, len(x) + 1, dtype=float) / max(len(x), 1)
    return x, y


@dataclass(frozen=True)
class Summary:
    """Order statistics, moments and MAD outliers of one set of samples."""

    n: int
    min: float
    p50: float
    p90: float
    p99: float
    mean: float
    #: Sample standard deviation (ddof=1); NaN for fewer than two samples.
    stddev: float
    mad: float
    outliers: int

    def as_dict(self, unit_suffix: str = "") -> dict[str, Any]:
        """The fields in order; `unit_suffix` (e.g. "_ms") is appended to the names
        of those in the samples' unit, that is all but the counts n and outliers."""
        return {k if k in ("n", "outliers") else k + unit_suffix: v
                for k, v in asdict(self).items()}


def mad_outliers(values: Values) -> np.ndarray:
    """A boolean mask of the outliers of `values` by the MAD rule (MAD_CUTOFF).

    With MAD = 0 (more than half the samples equal) only values different
    from the median are outliers.
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    center = np.median(x)
    mad = float(np.median(np.abs(x - center)))
    mask: np.ndarray = np.abs(x - center) > MAD_CUTOFF * MAD_SCALE * mad
    return mask


def summarize(values: Values) -> Summary:
    """min, p50, p90, p99 (linear interpolation), mean, stddev, MAD and MAD outliers."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, 0)
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    center = float(np.median(x))
    return Summary(
        n=int(x.size), min=float(x.min()), p50=float(p50), p90=float(p90), p99=float(p99),
        mean=float(x.mean()), stddev=stddev(x), mad=float(np.median(np.abs(x - center))),
        outliers=int(mad_outliers(x).sum()))


# -- ratios and significance -------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, where x / 0 is inf and 0 / 0 is 1 (no change)."""
    return numerator / denominator if denominator else math.inf if numerator else 1.0


@dataclass(frozen=True)
class Ratio:
    """median(a) / median(b), with a bootstrap 95 % confidence interval."""

    ratio: float
    ci_low: float
    ci_high: float


def median_ratio(a: Values, b: Values, *, seed: int,
                 resamples: int = BOOTSTRAP_RESAMPLES) -> Ratio:
    """median(a) / median(b), e.g. a mode's slowdown against `direct` (medians:
    robust to the odd hiccup).

    Uncertainty: percentile bootstrap. Each resample draws both arrays with
    replacement, independently (not paired sample by sample), and takes the
    ratio of the two medians; the interval is the 2.5th and 97.5th percentile of
    those ratios. `seed` fixes the draws (all of `a`'s, then all of `b`'s), so an
    interval can be recomputed exactly from the journaled samples.
    """
    import numpy as np

    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        nan = math.nan
        return Ratio(nan, nan, nan)
    point = float(np.median(x) / np.median(y))
    rng = np.random.default_rng(seed)
    boot_x = np.median(rng.choice(x, size=(resamples, x.size), replace=True), axis=1)
    boot_y = np.median(rng.choice(y, size=(resamples, y.size), replace=True), axis=1)
    low, high = np.percentile(boot_x / boot_y, [2.5, 97.5])
    return Ratio(point, float(low), float(high))


def mann_whitney_p(a: Values, b: Values) -> float:
    """Two-sided p-value of the Mann-Whitney U test of `a` against `b` (scipy's
    default method: exact for small samples without ties, else asymptotic)."""
    from scipy import stats as sps

    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def fisher_exact_p(a_ok: int, a_n: int, b_ok: int, b_n: int) -> float:
    """Two-sided p-value of Fisher's exact test: `a_ok` successes of `a_n` against
    `b_ok` of `b_n`."""
    from scipy import stats as sps

    return float(sps.fisher_exact([[a_ok, a_n - a_ok], [b_ok, b_n - b_ok]]).pvalue)
