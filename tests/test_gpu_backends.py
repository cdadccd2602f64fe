"""NVIDIA targets without a GPU: TensorRT build options, trtexec's logs, ORT's provider lists, and
that nothing imports TensorRT until it is used."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import fixture

from backends.benchmark_model import ToolOutputError
from backends.onnxruntime_backend import provider_list
from backends.tensorrt_backend import TensorRtBackend, builder_flags, trtexec_args
from backends.trtexec import parse_export_times, parse_trtexec_log


def test_trtexec_log_and_export_times():
    result = parse_trtexec_log(fixture("trtexec_sa12_fp16.log"))
    assert result.gpu_compute.median_ms == 0.941162 and result.gpu_compute.p99_ms == 1.00562
    assert result.latency.median_ms == 0.950195
    assert result.command.startswith("trtexec --onnx=model.onnx --fp16")
    assert parse_export_times(fixture("trtexec_times.json")) == [0.94, 0.95, 0.93, 0.97]


def test_trtexec_failures():
    with pytest.raises(ToolOutputError, match="Could not find plugin creator for Gelu"):
        parse_trtexec_log(fixture("trtexec_failed.log"))
    with pytest.raises(ToolOutputError, match="no GPU compute summary .looked for 'GPU Compute Time: min"):
        parse_trtexec_log("\n".join(fixture("trtexec_sa12_fp16.log").splitlines()[:9]))
    with pytest.raises(ToolOutputError, match="line 2"):
        parse_export_times('[\n  { "computeMs" : 0.9 ,,}\n]')
    with pytest.raises(ToolOutputError, match="iteration 1 has no computeMs"):
        parse_export_times('[{"computeMs": 1.0}, {"latencyMs": 1.0}]')


def test_tensorrt_build_options():
    assert builder_flags("fp32") == ([], ["TF32"])
    assert builder_flags("fp16") == (["FP16"], [])
    assert builder_flags("int8") == (["INT8", "FP16"], [])  # explicit quantization: int8 where QDQ says, else fp16
    with pytest.raises(ValueError):
        builder_flags("int4")
    assert "--fp16" in trtexec_args("m.onnx", "fp16") and "--noTF32" not in trtexec_args("m.onnx", "fp16")
    assert "--noTF32" in trtexec_args("m.onnx", "fp32")
    assert trtexec_args("m.onnx", "fp32", "t.json")[-1] == "--exportTimes=t.json"


def test_tensorrt_is_unavailable_here_without_importing_it():
    import sys

    reason = TensorRtBackend().unavailable_reason("gpu")
    assert reason and ("tensorrt is not installed" in reason or "no CUDA" in reason)
    assert "tensorrt" not in sys.modules


def test_onnxruntime_gpu_provider_lists():
    assert provider_list("CPUExecutionProvider", "fp32", None) == ["CPUExecutionProvider"]
    assert provider_list("CUDAExecutionProvider", "fp32", None) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = provider_list("TensorrtExecutionProvider", "fp16", Path("/c"))
    assert trt[0] == ("TensorrtExecutionProvider", {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                                    "trt_engine_cache_path": "/c"})


def test_tensorrt_8_2_to_8_5_print_only_the_99th_percentile():
    """Variant 6: JetPack 4.6/5.x era summaries (TensorRT 8.2 container, RTX 3090; yolov7's README)."""
    result = parse_trtexec_log(fixture("trtexec_8.2_rtx3090_p99only.log"))
    g = result.gpu_compute
    assert (g.median_ms, g.mean_ms, g.p99_ms, g.p90_ms, g.p95_ms) == (13.5178, 13.5448, 14.2151, None, None)
    assert result.latency.median_ms == 15.0422 and result.command is None and result.batch is None


def test_tensorrt_7_multiline_blocks():
    """Variant 7: TensorRT 7.1 (Jetson, 2020) prints 'GPU Compute' then min:/max:/mean:/median:/percentile: lines."""
    result = parse_trtexec_log(fixture("trtexec_7.1_jetson_multiline.log"))
    g = result.gpu_compute
    assert (g.min_ms, g.max_ms, g.mean_ms, g.median_ms, g.p99_ms) == (4.2439, 7.02356, 4.42492, 4.40088, 5.36792)
    assert result.latency.median_ms == 4.49951  # "Host Latency", not "end to end"
    assert result.command.startswith("/usr/src/tensorrt/bin/trtexec --onnx=yolov4_1_3_416_416_static.onnx")


@pytest.mark.parametrize("command, batch", [
    ("trtexec --onnx=m.onnx --shapes=input:4x3x224x224 --fp16", 4),
    ("trtexec --loadEngine=e --shapes=ref_y:1x128x100x160,c1:1x48x1600x2560", 1),
    ("trtexec --loadEngine=e --shapes=a:2x3,b:8x3", None),  # inputs disagree: not a batch
    ("trtexec --uff=m.uff --batch=16", 16),
    ("trtexec --onnx=m.onnx --fp16", None),
])
def test_the_batch_comes_from_the_echoed_command(command, batch):
    from backends.trtexec import batch_of

    assert batch_of(command) == batch
