"""LiteRT's benchmark_model: its command line and its output, from the tool's own logs (tests/fixtures)."""
from __future__ import annotations

import pytest
from helpers import fixture

from backends.benchmark_model import ToolOutputError, benchmark_model_args, parse_benchmark_model


def test_benchmark_model_with_op_profiling():
    result = parse_benchmark_model(fixture("benchmark_model_xnnpack_profile.log"))
    assert result.init_ms == pytest.approx(98.412)
    assert (result.warmup.count, result.warmup.first_us) == (83, 14923)
    assert (result.timed.count, result.timed.avg_us, result.timed.std_us) == (251, 11943.7, 187)
    assert result.timed.min_us == 11688 and result.timed.max_us == 13015
    assert "completely executed by the delegate" in result.delegate_note
    # only the regular-runs table, not the initialization profile nor the summaries after it
    assert [op.node_type for op in result.ops][:2] == ["Convolution (NHWC, F32) IGEMM", "Convolution (NHWC, F32) DWConv"]
    assert len(result.ops) == 7
    dw = result.ops[1]
    assert (dw.avg_ms, dw.percent, dw.calls, dw.name) == (3.802, 32.102, 31, "Delegate/Convolution (NHWC, F32) DWConv:1")


def test_benchmark_model_gpu_delegate_fallback_is_reported():
    result = parse_benchmark_model(fixture("benchmark_model_gpu_partial.log"))
    assert result.timed.avg_us == 27654.1 and result.ops == []
    assert "partially executed by the delegate w/ 23 delegate kernels" in result.delegate_note
    assert "remaining 22 operations will run on the CPU" in result.delegate_note


def test_benchmark_model_failure_names_the_line():
    with pytest.raises(ToolOutputError, match="Didn't find op for builtin opcode 'GELU'"):
        parse_benchmark_model(fixture("benchmark_model_failed.log"))


def test_benchmark_model_truncated_output_is_refused():
    with pytest.raises(ToolOutputError, match="incomplete.*last line: 'Running benchmark for at least 50"):
        parse_benchmark_model(fixture("benchmark_model_truncated.log"))
    with pytest.raises(ToolOutputError, match="<empty output>"):
        parse_benchmark_model("")


def test_benchmark_model_command():
    args = benchmark_model_args("/data/local/tmp/bm", "/data/local/tmp/m.tflite", threads=4, delegate="gpu",
                                warmup_runs=10, warmup_seconds=1.0, num_runs=50, min_seconds=3.0, op_profiling=True)
    assert args == ["/data/local/tmp/bm", "--graph=/data/local/tmp/m.tflite", "--num_threads=4", "--warmup_runs=10",
                    "--warmup_min_secs=1", "--num_runs=50", "--min_secs=3", "--enable_op_profiling=true",
                    "--use_xnnpack=false", "--use_gpu=true"]
    assert "--use_xnnpack=true" in benchmark_model_args("b", "m", threads=1, delegate="xnnpack", warmup_runs=1,
                                                        warmup_seconds=0, num_runs=1, min_seconds=0,
                                                        op_profiling=False)
    with pytest.raises(ValueError, match="xnnpack, gpu, nnapi"):
        benchmark_model_args("b", "m", threads=1, delegate="hexagon", warmup_runs=1, warmup_seconds=0, num_runs=1,
                             min_seconds=0, op_profiling=False)
