"""Summary statistics against values computed by hand."""
from __future__ import annotations

import pytest

from harness.stats import bootstrap_interval, ratio_of_medians, summarize


def test_summary_of_one_to_ten_ms():
    s = summarize([i * 1_000_000 for i in range(1, 11)])  # 1..10 ms
    assert s.count == 10
    assert (s.min_ms, s.max_ms) == (1.0, 10.0)
    assert s.median_ms == 5.5
    assert s.mean_ms == 5.5
    # linear interpolation: rank (n - 1) * q -> p90 = 9 + 0.1 * (10 - 9)
    assert s.p90_ms == pytest.approx(9.1)
    assert s.p95_ms == pytest.approx(9.55)
    assert s.p99_ms == pytest.approx(9.91)
    # sample std of 1..10 = sqrt(82.5 / 9)
    assert s.std_ms == pytest.approx((82.5 / 9) ** 0.5)
    assert s.cv == pytest.approx(s.std_ms / 5.5)
    assert s.median_ci_low_ms <= 5.5 <= s.median_ci_high_ms
    assert 1.0 <= s.median_ci_low_ms and s.median_ci_high_ms <= 10.0


def test_constant_samples_have_zero_spread():
    s = summarize([2_000_000] * 5)
    assert (s.std_ms, s.cv, s.median_ci_low_ms, s.median_ci_high_ms) == (0.0, 0.0, 2.0, 2.0)


def test_bootstrap_is_deterministic_and_narrows_with_more_samples():
    few = [1, 2, 3, 4, 100]
    assert bootstrap_interval(few) == bootstrap_interval(few)
    wide = bootstrap_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    narrow = bootstrap_interval([1.0, 2.0, 3.0, 4.0, 5.0] * 40)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_ratio_of_medians():
    ratio, low, high = ratio_of_medians([2, 2, 2, 2], [1, 1, 1, 1])
    assert (ratio, low, high) == (2.0, 2.0, 2.0)
    ratio, low, high = ratio_of_medians([10, 11, 12, 13, 14], [5, 6, 6, 6, 7])
    assert ratio == 2.0 and low < 2.0 < high


def test_no_samples():
    with pytest.raises(ValueError):
        summarize([])
