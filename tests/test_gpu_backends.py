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
    with pytest.raises(ToolOutputError, match="no 'GPU Compute Time'"):
        parse_trtexec_log("\n".join(fixture("trtexec_sa12_fp16.log").splitlines()[:9]))
    with pytest.raises(ToolOutputError, match="line 2"):
        parse_export_times('[\n  { "computeMs" : 0.9 ,,}\n]')
    with pytest.raises(ToolOutputError, match="iteration 1 has no computeMs"):
        parse_export_times('[{"computeMs": 1.0}, {"latencyMs": 1.0}]')


def test_tensorrt_build_options():
    assert builder_flags("fp32") == ([], ["TF32"])
    assert builder_flags("fp16") == (["FP16"], [])
    with pytest.raises(ValueError):
        builder_flags("int8")
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
