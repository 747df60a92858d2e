"""The probe's statistics against numpy/scipy on fixed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from osbench.kinds.rootwrap import stats

#: 4 ms calls with one 700 ms hiccup and one slow-ish call, as a direct mode sees them.
DIRECT = np.array([4.1, 3.9, 4.0, 4.2, 4.05, 3.95, 700.0, 4.3, 4.0, 5.2])
ROOTWRAP = np.array([127.0, 130.5, 126.2, 128.8, 125.1, 131.0, 129.9, 127.7, 126.6, 128.1])


def test_summary_matches_numpy_and_scipy() -> None:
    s = stats.summarize(DIRECT)
    assert s.n == 10
    assert s.min_ms == DIRECT.min()
    assert s.p50_ms == pytest.approx(np.median(DIRECT))
    assert s.p90_ms == pytest.approx(np.percentile(DIRECT, 90))
    assert s.p99_ms == pytest.approx(np.percentile(DIRECT, 99))
    assert s.mean_ms == pytest.approx(DIRECT.mean())
    assert s.stddev_ms == pytest.approx(np.std(DIRECT, ddof=1))
    assert s.mad_ms == pytest.approx(sps.median_abs_deviation(DIRECT))


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
    assert (one.p50_ms, one.outliers) == (3.0, 0)
    assert np.isnan(one.stddev_ms)


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


def test_ratio_without_samples_is_nan() -> None:
    assert np.isnan(stats.median_ratio([], DIRECT, seed=0).ratio)
