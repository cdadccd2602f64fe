"""OpenVINO's benchmark_app output, as it printed on this machine."""
from __future__ import annotations

import pytest
from helpers import fixture

from backends.benchmark_app import parse_benchmark_app
from backends.benchmark_model import ToolOutputError


def test_benchmark_app_real_output():
    result = parse_benchmark_app(fixture("benchmark_app_t8.log"))
    assert (result.count, result.median_ms, result.mean_ms, result.min_ms, result.max_ms) == (444, 4.39, 4.49, 4.21, 18.92)
    assert result.first_ms == 7.13
    with pytest.raises(ToolOutputError, match="no latency line"):
        parse_benchmark_app(fixture("benchmark_app_t8.log").split("[ INFO ]    Median")[0])


def test_2021_builds_print_one_latency_line():
    """Variant 9: OpenVINO 2021 (C++ README sample): 'Latency: 50.99 ms', the median, 4 requests in flight."""
    result = parse_benchmark_app(fixture("benchmark_app_2021_cpu_async_one_latency.log"))
    assert (result.count, result.median_ms, result.mean_ms) == (4612, 50.99, None)
    assert (result.api, result.requests, result.streams) == ("async", 4, 4)


def test_2022_cpp_builds_label_the_mean_avg():
    """Variant 10: OpenVINO 2022 C++ ('Avg:')."""
    result = parse_benchmark_app(fixture("benchmark_app_2022_cpp_static_async.log"))
    assert (result.count, result.median_ms, result.mean_ms, result.min_ms, result.max_ms, result.first_ms) == (
        6640, 35.36, 36.12, 18.55, 88.96, 26.26)


def test_dynamic_shape_groups_are_refused_not_mixed():
    """Variant 11: one latency block per data shape group; the aggregate is no one shape's latency."""
    with pytest.raises(ToolOutputError, match="ran 2 data shape groups .1. data : .1, 3, 224, 224.; 2. data"):
        parse_benchmark_app(fixture("benchmark_app_2022_cpp_dynamic_groups.log"))


def test_percentiles_and_microseconds():
    text = fixture("benchmark_app_t8.log").replace("   Median:        4.39 ms", "   99 percentile:     961.20 us")
    result = parse_benchmark_app(text)
    assert result.median_ms is None and result.p99_ms == pytest.approx(0.9612)
