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
    with pytest.raises(ToolOutputError, match="no median_ms line"):
        parse_benchmark_app(fixture("benchmark_app_t8.log").split("[ INFO ]    Median")[0])
