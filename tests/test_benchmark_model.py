"""LiteRT's benchmark_model: its command line and its output, from the tool's own logs (tests/fixtures)."""
from __future__ import annotations

import pytest
from helpers import fixture

from backends.benchmark_model import OpRow, ToolOutputError, benchmark_model_args, parse_benchmark_model


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


def test_tf_2_8_log_with_a_one_iteration_warmup_scientific_numbers_and_a_start_column():
    """Variants 1, 2, 5: `count=1 curr=N`, `avg=2.95034e+06`, op tables with [start] (RISC-V, TF 2.8)."""
    result = parse_benchmark_model(fixture("benchmark_model_tf2.8_riscv64_opprofile.log"))
    assert (result.warmup.count, result.warmup.first_us, result.warmup.avg_us) == (1, 3512391, None)
    assert (result.timed.count, result.timed.avg_us, result.timed.min_us) == (50, 2.95034e+06, 2727568)
    assert result.init_ms == 17.187 and len(result.ops) == 31
    assert result.ops[0] == OpRow("CONV_2D", 87.754, 60.957, 2.066, 1, "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0")
    assert {op.node_type for op in result.ops} == {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "SQUEEZE",
                                                   "SOFTMAX"}


def test_2019_log_with_the_old_summary_line():
    """Variant 3: TF Lite 1.12 (TI AM57x SDK, 2019) ends with 'Average inference timings in us: ... no stats:'."""
    result = parse_benchmark_model(fixture("benchmark_model_tflite1.12_am57x_2019.log"))
    assert result.init_ms == 4.452 and result.warmup.first_us == 146161
    assert (result.timed.count, result.timed.avg_us, result.timed.std_us) == (50, 137722, 896)


@pytest.mark.parametrize("name, median_us, p95_us, avg_us", [
    ("benchmark_model_tflite2.20_am62x_cpu.log", 1239807, 1247415, 1.24027e+06),
    ("benchmark_model_tflite2.20_am62x_xnnpack.log", 899281, 904305, 899641),
])
def test_builds_that_print_a_median(name, median_us, p95_us, avg_us):
    """Variant 4: p5/median/p95 on every count= line (LiteRT 2.20, TI AM62x, CPU and XNNPACK)."""
    result = parse_benchmark_model(fixture(name))
    assert (result.timed.median_us, result.timed.p95_us, result.timed.avg_us) == (median_us, p95_us, avg_us)
    assert result.warmup.count == 1 and result.warmup.median_us == result.warmup.first_us


@pytest.mark.parametrize("name, memory, median_us", [
    # TF 2.x printed the footprint as "Peak memory footprint (MB): init=... overall=..." (i.MX8 MP, CPU and NNAPI)
    ("benchmark_model_tflite_imx8mp_cpu_peak_memory.log", (0.0, 0.0), None),
    ("benchmark_model_tflite_imx8mp_nnapi_peak_memory.log", (0.0, 15.3438), None),
    # and later "Memory footprint delta from the start of the tool (MB): ..." (LiteRT 2.20)
    ("benchmark_model_tflite2.20_am62x_cpu.log", (6.36328, 109.832), 1239807),
])
def test_the_memory_footprint_is_read_in_both_spellings(name, memory, median_us):
    result = parse_benchmark_model(fixture(name))
    assert (result.memory_init_mb, result.memory_overall_mb) == memory
    assert result.timed.median_us == median_us


def test_android_logcat_prefixes_are_read():
    """The same output as Android's logcat shows it ('I tflite  : count=...')."""
    text = fixture("benchmark_model_tflite2.20_am62x_cpu.log").replace("INFO: ", "I tflite  : ")
    result = parse_benchmark_model(text)
    assert (result.timed.count, result.timed.median_us, result.warmup.first_us) == (50, 1239807, 1357602)
