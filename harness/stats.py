"""Summary statistics of latency samples, and ratios between runs, with bootstrap intervals.

Percentiles use linear interpolation between order statistics (numpy's default, "type 7").
The confidence interval of the median is a percentile bootstrap with a fixed seed, so the same
samples always give the same interval.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    count: int
    min_ms: float
    median_ms: float
    mean_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float  # sample standard deviation (n - 1)
    cv: float  # std / mean
    median_ci_low_ms: float
    median_ci_high_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples_ns, seed: int = 0) -> Summary:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no samples to summarize")
    p90, p95, p99, median = np.percentile(ms, [90, 95, 99, 50])
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    low, high = bootstrap_interval(ms, np.median, seed=seed)
    return Summary(
        count=int(ms.size), min_ms=float(ms.min()), median_ms=float(median), mean_ms=mean,
        p90_ms=float(p90), p95_ms=float(p95), p99_ms=float(p99), max_ms=float(ms.max()),
        std_ms=std, cv=std / mean if mean else 0.0, median_ci_low_ms=low, median_ci_high_ms=high,
    )


def bootstrap_interval(values, statistic=np.median, seed: int = 0,
                       resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    stats = statistic(values[idx], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def ratio_of_medians(a_ns, b_ns, seed: int = 0) -> tuple[float, float, float]:
    """median(a) / median(b) with a bootstrap interval resampling both sides independently."""
    a = np.asarray(a_ns, dtype=np.float64)
    b = np.asarray(b_ns, dtype=np.float64)
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, size=(BOOTSTRAP_RESAMPLES, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, size=(BOOTSTRAP_RESAMPLES, b.size))], axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(ra / rb, [tail, 100 - tail])
    return float(np.median(a) / np.median(b)), float(low), float(high)
