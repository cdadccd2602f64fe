"""Vendor-tool command builders and output parsers, against fixtures in the tools' own format."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from backends import adb
from backends.benchmark_app import parse_benchmark_app
from backends.benchmark_model import ToolOutputError, benchmark_model_args, parse_benchmark_model
from backends.onnxruntime_backend import provider_list
from backends.tensorrt_backend import TensorRtBackend, builder_flags, trtexec_args
from backends.trtexec import parse_export_times, parse_trtexec_log

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


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


def test_adb_device_listing_and_serial_choice():
    listing = "List of devices attached\nR58N12ABC\tdevice\nemulator-5554\toffline\n0123XYZ\tunauthorized\n\n"
    assert adb.parse_devices(listing) == ["R58N12ABC"]
    assert adb.resolve_serial("android", ["R58N12ABC"]) == "R58N12ABC"
    assert adb.resolve_serial("android:R58N12ABC", ["R58N12ABC", "X"]) == "R58N12ABC"
    with pytest.raises(adb.AdbError, match="several phones attached"):
        adb.resolve_serial("android", ["A", "B"])
    with pytest.raises(adb.AdbError, match="no Android phone attached"):
        adb.resolve_serial("android", [])
    with pytest.raises(adb.AdbError, match="not a valid adb serial"):
        adb.resolve_serial("android:A;rm -rf /", ["A"])


def test_adb_shell_arguments_are_quoted_for_the_phone_shell():
    args = adb.shell_args("adb", "R58", "/data/local/tmp/bm", "--graph=/tmp/a b.tflite; reboot")
    assert args[:4] == ["adb", "-s", "R58", "shell"]
    assert shlex.split(args[4]) == ["/data/local/tmp/bm", "--graph=/tmp/a b.tflite; reboot"]


def test_thermal_status():
    assert adb.parse_thermal_status("IsStatusOverride: false\nThermal Status: 2\nCached temperatures:") == 2
    assert adb.parse_thermal_status("no thermal HAL") is None


def test_android_run_drives_the_phone_through_adb(tmp_path, monkeypatch):
    """The whole Android path with a fake adb: pushes, chmod, the tool's arguments, phone facts."""
    from backends.litert_backend import BENCHMARK_MODEL_ENV, LiteRtBackend
    from harness.timing import TimingPolicy

    tool = tmp_path / "benchmark_model"
    tool.write_bytes(b"\x7fELF")
    artifact = tmp_path / "abc123" / "model.tflite"
    artifact.parent.mkdir()
    artifact.write_bytes(b"TFL3")
    monkeypatch.setenv("ADB", "/opt/platform-tools/adb")
    monkeypatch.setenv(BENCHMARK_MODEL_ENV, str(tool))
    calls = []
    props = {"ro.product.model": "Pixel 7", "ro.soc.model": "Tensor G2", "ro.build.version.release": "14"}

    class Done:
        def __init__(self, stdout):
            self.returncode, self.stdout, self.stderr = 0, stdout, ""

    def fake_run(args, **kwargs):
        calls.append(args)
        if args[1:] == ["devices"]:
            return Done("List of devices attached\nR58N12ABC\tdevice\n")
        remote = shlex.split(args[4]) if len(args) > 4 and args[3] == "shell" else []
        if remote[:1] == ["getprop"]:
            return Done(props.get(remote[1], "") + "\n")
        if remote[:2] == ["dumpsys", "thermalservice"]:
            return Done("Thermal Status: 1\n")
        if remote and remote[0].endswith("benchmark_model"):
            return Done(fixture("benchmark_model_xnnpack_profile.log"))
        return Done("")

    monkeypatch.setattr(adb.subprocess, "run", fake_run)
    backend = LiteRtBackend()
    assert backend.unavailable_reason("android") is None
    policy = TimingPolicy(warmup_iterations=10, warmup_seconds=1, min_iterations=50, min_seconds=3)
    out = backend.run_remote(artifact, "android", 4, policy, delegate="xnnpack")
    assert out["tool_result"].timed.count == 251
    assert out["phone"]["model"] == "Pixel 7" and out["phone"]["soc"] == "Tensor G2"
    assert out["phone"]["thermal_before"] == 1 and out["phone"]["thermal_after"] == 1
    pushes = [c for c in calls if c[3:4] == ["push"]]
    assert pushes[0][4:] == [str(artifact), f"{adb.REMOTE_DIR}/abc123.tflite"]
    assert pushes[1][4:] == [str(tool), f"{adb.REMOTE_DIR}/benchmark_model"]
    run = next(shlex.split(c[4]) for c in calls if c[3:4] == ["shell"] and "benchmark_model" in c[4]
               and "--graph" in c[4])
    assert run[1:5] == [f"--graph={adb.REMOTE_DIR}/abc123.tflite", "--num_threads=4", "--warmup_runs=10",
                        "--warmup_min_secs=1"]
    assert all(isinstance(c, list) for c in calls)


def test_android_unavailable_reasons(monkeypatch, tmp_path):
    from backends.litert_backend import BENCHMARK_MODEL_ENV, LiteRtBackend

    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.setattr(adb.shutil, "which", lambda name: None)
    assert "adb not found" in LiteRtBackend().unavailable_reason("android")
    monkeypatch.setenv("ADB", "/opt/adb")
    monkeypatch.setattr(adb, "attached_phones", lambda run=None: ["R58"])
    monkeypatch.delenv(BENCHMARK_MODEL_ENV, raising=False)
    reason = LiteRtBackend().unavailable_reason("android")
    assert "benchmark_model not found" in reason and BENCHMARK_MODEL_ENV in reason


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


def test_benchmark_app_real_output():
    result = parse_benchmark_app(fixture("benchmark_app_t8.log"))
    assert (result.count, result.median_ms, result.mean_ms, result.min_ms, result.max_ms) == (444, 4.39, 4.49, 4.21, 18.92)
    assert result.first_ms == 7.13
    with pytest.raises(ToolOutputError, match="no median_ms line"):
        parse_benchmark_app(fixture("benchmark_app_t8.log").split("[ INFO ]    Median")[0])


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


def test_worker_turns_a_tool_run_into_a_stored_run(tmp_path):
    from harness import storage
    from harness.worker import tool_run

    parsed = parse_benchmark_model(fixture("benchmark_model_xnnpack_profile.log"))
    out = tool_run({"tool_result": parsed, "phone": {"model": "Pixel 7"}, "tool_output_tail": "..."})
    assert out["summary"]["mean_ms"] == pytest.approx(11.9437) and out["summary"]["count"] == 251
    assert out["first_ns"] == 14_923_000
    assert out["op_profile"][1]["total_ms"] == pytest.approx(3.802)
    assert out["op_profile"][1]["op_class"] == "conv_dw_other"
    engine = storage.open_engine(str(tmp_path / "r.db"))
    run_id = storage.save_run(engine, sweep_id=None, host={"hostname": "h", "cpu_model": "c", "logical_cores": 2,
                                                           "os": "o", "machine": "m"},
                              spec={"model": "t8", "resolution": 256, "batch": 1, "form": "reparam",
                                    "weights": "random:0"},
                              target={"backend": "litert", "device": "android:R58"}, threads=4,
                              result={"status": "ok", **out}, summary=out["summary"])
    _, rows = storage.read_only_query(engine, f"SELECT iterations, mean_ms, environment FROM runs WHERE id={run_id}")
    assert rows[0][0] == 251 and "Pixel 7" in rows[0][2]


def test_android_targets_carry_the_delegate(monkeypatch):
    from backends.litert_backend import LiteRtBackend
    from harness import sweep

    monkeypatch.setattr(LiteRtBackend, "unavailable_reason", lambda self, device: None)
    targets, _ = sweep.plan_targets("android:R58", ["litert"], "fp16", "gpu")
    assert [t.name for t in targets] == ["litert/android:R58[delegate=gpu]"]
    assert targets[0].option_dict() == {"delegate": "gpu"}
    cpu, _ = sweep.plan_targets("cpu", ["litert"])
    assert [t.name for t in cpu] == ["litert/cpu"]
