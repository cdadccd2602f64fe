"""Summary statistics of latency samples, and ratios between runs, with bootstrap intervals.

Percentiles use linear interpolation between order statistics (numpy's default, "type 7").
The confidence interval of the median is a percentile bootstrap with a fixed seed, so the same
samples always give the same interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Statistics of a run's timed samples in milliseconds. Every field is set when the harness timed
    the run itself; a vendor tool's log fills only what the tool reports, the rest stays None."""
    count: int | None = None
    min_ms: float | None = None
    median_ms: float | None = None
    mean_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None  # sample standard deviation (n - 1)
    cv: float | None = None  # std / mean
    median_ci_low_ms: float | None = None
    median_ci_high_ms: float | None = None


def summarize(samples_ns, seed: int = 0) -> Summary:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no samples to summarize")
    p90, p95, p99, median = np.percentile(ms, [90, 95, 99, 50])
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    low, high = bootstrap_interval(ms, seed=seed)
    return Summary(
        count=int(ms.size), min_ms=float(ms.min()), median_ms=float(median), mean_ms=mean,
        p90_ms=float(p90), p95_ms=float(p95), p99_ms=float(p99), max_ms=float(ms.max()),
        std_ms=std, cv=std / mean if mean else 0.0, median_ci_low_ms=low, median_ci_high_ms=high,
    )


SORT_BELOW = 256  # rows shorter than this: a full sort beats np.median's partition (3x at 50 values)


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """np.median(rows, axis=1), the same numbers, faster for the short rows most runs store."""
    n = rows.shape[1]
    if n >= SORT_BELOW:
        return np.median(rows, axis=1)
    ordered = np.sort(rows, axis=1)
    return ordered[:, n // 2] if n % 2 else ordered[:, n // 2 - 1:n // 2 + 1].mean(axis=1)


def _resampled_medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The medians of BOOTSTRAP_RESAMPLES resamples (with replacement) of `values`."""
    return _row_medians(values[rng.integers(0, values.size, size=(BOOTSTRAP_RESAMPLES, values.size))])


def _interval(statistics: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(statistics, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(values, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of `values`."""
    return _interval(_resampled_medians(np.asarray(values, dtype=np.float64), np.random.default_rng(seed)))


def ratio_of_medians(a, b, seed: int = 0) -> tuple[float, float, float]:
    """median(a) / median(b) with a bootstrap interval resampling both sides independently."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    low, high = _interval(_resampled_medians(a, rng) / _resampled_medians(b, rng))
    return float(np.median(a) / np.median(b)), low, high
