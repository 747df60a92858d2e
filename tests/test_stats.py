"""osbench.stats against independent references on fixed arrays: numpy/scipy, the
standard library's `statistics`, and by-hand formulas (exact Mann-Whitney by
enumeration, Fisher's exact test by the hypergeometric law)."""

from __future__ import annotations

import itertools
import json
import math
import statistics
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from osbench import stats
from osbench.scenario.sla import parse

#: 4 ms calls with one 700 ms hiccup and one slow-ish call, as a direct mode sees them.
DIRECT = np.array([4.1, 3.9, 4.0, 4.2, 4.05, 3.95, 700.0, 4.3, 4.0, 5.2])
ROOTWRAP = np.array([127.0, 130.5, 126.2, 128.8, 125.1, 131.0, 129.9, 127.7, 126.6, 128.1])


def test_importing_the_module_loads_neither_numpy_nor_scipy() -> None:
    """`osbench validate` parses SLA criteria through it (see test_light_imports)."""
    probe = ("import json, sys\nimport osbench.stats, osbench.scenario.sla\n"
             "assert osbench.stats.is_aggregate('p95')\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert not loaded & {"numpy", "scipy", "pandas"}


# -- mean_interval, ecdf (reports) ----------------------------------------------------


@pytest.mark.parametrize("samples", [[3.2, 3.3, 3.35], [8.0, 8.1, 7.96, 8.3, 7.7],
                                     list(np.random.default_rng(3).normal(6, 1, 10))])
def test_interval_matches_scipy(samples: list[float]) -> None:
    ours = stats.mean_interval(samples)
    low, high = sps.t.interval(0.95, len(samples) - 1, loc=np.mean(samples),
                               scale=sps.sem(samples))
    assert ours.mean == pytest.approx(np.mean(samples))
    assert (ours.low, ours.high) == (pytest.approx(low), pytest.approx(high))


def test_interval_of_one_or_no_sample() -> None:
    one = stats.mean_interval([4.0])
    assert (one.n, one.mean) == (1, 4.0) and math.isnan(one.half_width)
    assert stats.mean_interval([float("nan")]).n == 0


def test_ecdf_matches_scipy_and_drops_nan() -> None:
    values = [3.0, 1.0, float("nan"), 2.5, 7.0, 0.5]
    x, y = stats.ecdf(values)
    finite = [v for v in values if not math.isnan(v)]
    assert x.tolist() == sorted(finite)
    assert y.tolist() == pytest.approx(sps.ecdf(finite).cdf.evaluate(x))
    empty_x, empty_y = stats.ecdf([])
    assert empty_x.size == empty_y.size == 0


# -- summarize, mad_outliers, median_ratio (rootwrap) ------------------------------------


def test_summary_matches_numpy_and_scipy() -> None:
    s = stats.summarize(DIRECT)
    assert s.n == 10
    assert s.min == DIRECT.min()
    assert s.p50 == pytest.approx(np.median(DIRECT))
    assert s.p90 == pytest.approx(np.percentile(DIRECT, 90))
    assert s.p99 == pytest.approx(np.percentile(DIRECT, 99))
    assert s.mean == pytest.approx(DIRECT.mean())
    assert s.stddev == pytest.approx(np.std(DIRECT, ddof=1))
    assert s.mad == pytest.approx(sps.median_abs_deviation(DIRECT))


def test_summary_as_dict_names_the_unit_of_all_but_the_counts() -> None:
    """The rootwrap kind's `modes` columns."""
    assert list(stats.summarize(DIRECT).as_dict(unit_suffix="_ms")) == [
        "n", "min_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "stddev_ms", "mad_ms",
        "outliers"]
    assert list(stats.summarize(DIRECT).as_dict())[:2] == ["n", "min"]


def test_mad_outliers_use_the_normal_consistent_mad_and_cutoff_3_5() -> None:
    mad_sd = sps.median_abs_deviation(DIRECT, scale="normal")
    expected = np.abs(DIRECT - np.median(DIRECT)) > 3.5 * mad_sd
    mask = stats.mad_outliers(DIRECT)
    assert mask.tolist() == expected.tolist()
    # The hiccup and the 5.2 ms call; mean +- 3 stddev would flag nothing.
    assert DIRECT[mask].tolist() == [700.0, 5.2]
    assert stats.summarize(DIRECT).outliers == 2


def test_mad_zero_flags_only_values_off_the_median() -> None:
    assert stats.mad_outliers([5.0, 5.0, 5.0, 6.0]).tolist() == [False, False, False, True]
    assert stats.mad_outliers([]).tolist() == []


def test_empty_and_single_sample() -> None:
    assert stats.summarize([]).n == 0
    one = stats.summarize([3.0])
    assert (one.p50, one.outliers) == (3.0, 0)
    assert np.isnan(one.stddev)


def test_median_ratio_and_bootstrap_interval() -> None:
    r = stats.median_ratio(ROOTWRAP, DIRECT, seed=42)
    assert r.ratio == pytest.approx(np.median(ROOTWRAP) / np.median(DIRECT))
    assert r.ci_low <= r.ratio <= r.ci_high
    # Same as scipy's percentile bootstrap of the same statistic within a few %.
    res = sps.bootstrap((ROOTWRAP, DIRECT), lambda a, b: np.median(a) / np.median(b),
                        method="percentile", n_resamples=2000, vectorized=False,
                        paired=False, rng=np.random.default_rng(1))
    assert r.ci_low == pytest.approx(res.confidence_interval.low, rel=0.05)
    assert r.ci_high == pytest.approx(res.confidence_interval.high, rel=0.05)
    # A fixed seed gives the same interval again.
    assert stats.median_ratio(ROOTWRAP, DIRECT, seed=42) == r


def test_median_ratio_replays_from_the_seed() -> None:
    """The documented draws, redone by hand: every resample of the first array, then
    every resample of the second, uniform indices from numpy's default_rng(seed).
    Journaled intervals are recomputed this way; the draws must not change."""
    resamples = 500
    rng = np.random.default_rng(7)
    a = ROOTWRAP[rng.integers(0, ROOTWRAP.size, size=(resamples, ROOTWRAP.size))]
    b = DIRECT[rng.integers(0, DIRECT.size, size=(resamples, DIRECT.size))]
    low, high = np.percentile(np.median(a, axis=1) / np.median(b, axis=1), [2.5, 97.5])
    r = stats.median_ratio(ROOTWRAP, DIRECT, seed=7, resamples=resamples)
    assert (r.ci_low, r.ci_high) == (low, high)


def test_ratio_without_samples_is_nan() -> None:
    assert np.isnan(stats.median_ratio([], DIRECT, seed=0).ratio)


# -- aggregate (SLA criteria) -----------------------------------------------------------

SAMPLES = [12.5, 3.0, 7.25, 7.25, 40.0, 1.5, 9.0, 11.0, 2.0, 6.5, 18.0]


def _type7(values: list[float], q: float) -> float:
    """Percentile q by linear interpolation between order statistics (Hyndman and
    Fan's type 7, R's default), by hand."""
    x = sorted(values)
    h = (len(x) - 1) * q / 100
    lo = math.floor(h)
    return x[lo] if lo + 1 >= len(x) else x[lo] + (h - lo) * (x[lo + 1] - x[lo])


@pytest.mark.parametrize(("name", "expected"), [
    ("min", min(SAMPLES)), ("max", max(SAMPLES)), ("mean", statistics.fmean(SAMPLES)),
    ("median", statistics.median(SAMPLES)), ("stddev", statistics.stdev(SAMPLES)),
    ("sum", math.fsum(SAMPLES)), ("count", float(len(SAMPLES))),
    ("p50", statistics.median(SAMPLES)),
    ("p90", statistics.quantiles(SAMPLES, n=10, method="inclusive")[8]),
    ("p95", statistics.quantiles(SAMPLES, n=20, method="inclusive")[18]),
    ("p99", statistics.quantiles(SAMPLES, n=100, method="inclusive")[98]),
    ("p99.9", _type7(SAMPLES, 99.9)), ("p7", _type7(SAMPLES, 7)),
    ("p0", min(SAMPLES)), ("p100", max(SAMPLES)),
])
def test_aggregates_match_the_standard_library(name: str, expected: float) -> None:
    assert stats.is_aggregate(name)
    assert stats.aggregate(name, SAMPLES) == pytest.approx(expected, rel=1e-12)
    assert stats.aggregate(name, np.asarray(SAMPLES)) == stats.aggregate(name, SAMPLES)


def test_percentiles_are_numpys_linear_interpolation() -> None:
    for q in (1, 25, 50, 75, 90, 95, 99, 99.5):
        assert stats.aggregate(f"p{q}", SAMPLES) == float(np.percentile(SAMPLES, q))


def test_unknown_aggregates_and_small_samples() -> None:
    assert set(stats.AGGREGATES) == {"min", "max", "mean", "median", "stddev", "sum",
                                     "count"}
    for name in ("p101", "p", "p-1", "avg", "P95", "p95x"):
        assert not stats.is_aggregate(name)
        with pytest.raises(KeyError):
            stats.aggregate(name, SAMPLES)
    assert math.isnan(stats.aggregate("stddev", [3.0]))
    assert stats.aggregate("count", []) == 0.0
    assert stats.stddev([]) != stats.stddev([])  # NaN


def test_sla_measure_aggregates_the_numeric_part_of_a_column() -> None:
    """Non-numbers and missing values are dropped before aggregating; no numbers is
    no data, except for count."""
    column = [*SAMPLES, None, "timeout", float("nan")]
    samples = pd.DataFrame({"t": column})
    for name in ("p95", "mean", "stddev", "count", "max"):
        crit = parse(f"{name}(t) <= 10", metrics={}, columns={"t": ""})
        assert crit.measure({}, samples) == stats.aggregate(name, SAMPLES)
    empty = pd.DataFrame({"t": ["x", None]})
    assert parse("count(t) <= 1", metrics={}, columns={"t": ""}).measure({}, empty) == 0.0
    assert parse("p50(t) <= 1", metrics={}, columns={"t": ""}).measure({}, empty) is None
    one = pd.DataFrame({"t": [2.0]})
    assert parse("stddev(t) <= 1", metrics={}, columns={"t": ""}).measure({}, one) is None


# -- median, ratio, significance tests (compare) -----------------------------------------


def test_median_and_ratio() -> None:
    assert stats.median(SAMPLES) == statistics.median(SAMPLES)
    assert stats.median([4.0, 1.0]) == 2.5
    assert stats.ratio(13.0, 10.0) == pytest.approx(1.3)
    assert stats.ratio(5.0, 0.0) == math.inf
    assert stats.ratio(0.0, 0.0) == 1.0
    assert stats.ratio(0.0, 2.0) == 0.0


def _exact_mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact p-value (no ties) by enumerating every split of the pooled
    samples: the chance of a U at least as far from its mean as the observed one."""
    def u(first: list[float], second: list[float]) -> float:
        return sum(1.0 for x in first for y in second if x > y)

    pooled = a + b
    observed = u(a, b)
    extreme = max(observed, len(a) * len(b) - observed)
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    at_least = 0
    for chosen in splits:
        first = [pooled[i] for i in chosen]
        second = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        at_least += u(first, second) >= extreme
    return min(1.0, 2 * at_least / len(splits))


def _asymptotic_mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided normal approximation with tie correction and continuity correction."""
    pooled = a + b
    n1, n2, n = len(a), len(b), len(a) + len(b)

    def midrank(v: float) -> float:
        return sum(x < v for x in pooled) + (sum(x == v for x in pooled) + 1) / 2

    u1 = sum(midrank(v) for v in a) - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    ties = sum(t**3 - t for t in (pooled.count(v) for v in set(pooled)))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (u - n1 * n2 / 2 - 0.5) / sigma
    return math.erfc(z / math.sqrt(2))


@pytest.mark.parametrize(("a", "b"), [
    ([1.1, 2.3, 0.7, 4.4, 3.9], [5.2, 6.1, 4.9, 7.3]),
    ([10.0, 12.5, 9.75, 11.0, 13.25, 8.5], [10.5, 12.0, 9.5, 11.5, 14.0]),
    ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
])
def test_mann_whitney_small_samples_are_exact(a: list[float], b: list[float]) -> None:
    assert stats.mann_whitney_p(a, b) == pytest.approx(_exact_mann_whitney_p(a, b),
                                                       rel=1e-12)


def test_mann_whitney_large_samples_with_ties_are_asymptotic() -> None:
    rng = np.random.default_rng(7)
    a = [float(v) for v in np.round(rng.normal(100, 5, 60))]  # rounded: many ties
    b = [float(v) for v in np.round(rng.normal(103, 5, 45))]
    assert stats.mann_whitney_p(a, b) == pytest.approx(_asymptotic_mann_whitney_p(a, b),
                                                       rel=1e-9)
    assert stats.mann_whitney_p(a, b) == stats.mann_whitney_p(b, a)


def _fisher_p(a_ok: int, a_n: int, b_ok: int, b_n: int) -> float:
    """Two-sided Fisher exact test from the hypergeometric law, in exact fractions:
    the chance of a table with the same margins no likelier than the observed one."""
    ok, n = a_ok + b_ok, a_n + b_n

    def chance(x: int) -> Fraction:
        return Fraction(math.comb(a_n, x) * math.comb(b_n, ok - x), math.comb(n, ok))

    observed = chance(a_ok)
    tables = range(max(0, ok - b_n), min(a_n, ok) + 1)
    # scipy counts tables within a relative 1e-7 of the observed chance as as likely.
    return float(sum(c for c in map(chance, tables) if c <= observed * (1 + Fraction(1, 10**7))))


@pytest.mark.parametrize("table", [(199, 200, 180, 200), (200, 200, 199, 200),
                                   (58, 60, 50, 60), (10, 10, 9, 10), (3, 8, 7, 9),
                                   (5, 5, 5, 5), (0, 4, 4, 4)])
def test_fisher_exact_matches_the_hypergeometric_law(table: tuple[int, int, int, int]
                                                     ) -> None:
    assert stats.fisher_exact_p(*table) == pytest.approx(_fisher_p(*table), rel=1e-9)
