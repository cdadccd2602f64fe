"""Runs measured elsewhere: each vendor tool's output becomes a run result, and a phone run of ours
(benchmark_model over adb) becomes a stored run with its op table and the phone's facts."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FIXTURES, fixture
from sqlalchemy.orm import Session

from backends import RemoteTiming
from backends.benchmark_model import ToolOutputError, parse_benchmark_model
from harness import store
from harness.ingest.logs import ImportRequest, import_result, store_import
from harness.measure.worker import take_tool_timing
from harness.protocol import RunResult
from harness.spec import ModelSpec, Target


def request(tool: str, log: str | None = None, **changes) -> ImportRequest:
    options = dict(tool=tool, device="rtx2080ti", spec=ModelSpec("sa12"), precision="fp16", threads=1,
                   log_file=FIXTURES / log if log else None)
    return ImportRequest(**{**options, **changes})


def test_a_phone_run_becomes_a_stored_run(engine):
    result = RunResult(status="ok", environment={"threads": 4})
    timing = RemoteTiming(parse_benchmark_model(fixture("benchmark_model_xnnpack_profile.log")),
                          device_facts={"model": "Pixel 7"}, output_tail="...")
    take_tool_timing(result, timing)
    assert result.summary.mean_ms == pytest.approx(11.9437) and result.summary.count == 251
    assert result.summary.median_ms is None  # the tool prints no per-iteration samples
    assert result.first_ns == 14_923_000
    assert result.op_profile[1].total_ms == pytest.approx(3.802) and result.op_profile[1].op_class == "conv_dw_other"
    assert result.environment["threads"] == 4 and result.environment["tool"] == "benchmark_model"
    run_id = store.save_run(engine, result, spec=ModelSpec("t8"), target=Target("litert", "android:R58"), threads=4,
                            precision="fp32", host={"hostname": "h", "cpu_model": "c", "logical_cores": 2,
                                                    "os": "o", "machine": "m"})
    with Session(engine) as session:
        run = session.get(store.Run, run_id)
        assert run.iterations == 251 and run.mean_ms == pytest.approx(11.9437) and run.latency_ms == run.mean_ms
        assert run.environment["phone"] == {"model": "Pixel 7"} and len(run.op_profiles) == 7


def test_trtexec_with_per_iteration_times():
    result = import_result(request("trtexec", "trtexec_sa12_fp16.log",
                                   export_times_file=FIXTURES / "trtexec_times.json")).result
    assert result.imported and result.samples_ns == [940_000, 950_000, 930_000, 970_000]
    assert result.summary.median_ms == pytest.approx(0.945)
    assert result.environment["command"].startswith("trtexec --onnx=model.onnx --fp16")


def test_trtexec_summary_only():
    result = import_result(request("trtexec", "trtexec_sa12_fp16.log")).result
    assert result.samples_ns == [] and result.summary.median_ms == 0.941162 and result.summary.p99_ms == 1.00562
    assert result.environment["latency_with_copies_median_ms"] == 0.950195


def test_benchmark_app_and_manual():
    app = import_result(request("benchmark_app", "benchmark_app_t8.log", precision="fp32")).result
    assert (app.summary.count, app.summary.median_ms, app.first_ns) == (444, 4.39, 7_130_000)
    manual = import_result(request("manual", backend="coreml", latency_ms=0.8, note="Xcode")).result
    assert manual.summary.median_ms == 0.8 and manual.environment == {"tool": "manual", "note": "Xcode"}


@pytest.mark.parametrize("changes, message", [
    ({"tool": "perf"}, "unknown tool 'perf'"),
    ({"device": "bad;device"}, "device name 'bad;device' must be"),
    ({"tool": "manual", "log_file": None}, "--tool manual needs --backend"),
    ({"tool": "manual", "backend": "coreml", "latency_ms": -1.0}, "needs --latency-ms"),
    ({"log_file": None}, "--tool trtexec needs the log FILE"),
    ({"log_file": Path("/no/such/log")}, "cannot read /no/such/log"),
    ({"log_file": FIXTURES / "trtexec_failed.log"}, "Could not find plugin creator for Gelu"),
])
def test_bad_imports_are_refused(changes, message):
    with pytest.raises((ValueError, ToolOutputError), match=message.replace("(", r"\(").replace(";", ".")):
        import_result(request(**{"tool": "trtexec", "log": "trtexec_sa12_fp16.log", **changes}))


def test_an_imported_run_belongs_to_its_device(engine):
    run_id = store_import(engine, import_result(request("trtexec", "trtexec_sa12_fp16.log")))
    with Session(engine) as session:
        run = session.get(store.Run, run_id)
        assert run.imported and run.target == "tensorrt/rtx2080ti" and run.precision == "fp16"
        assert session.get(store.Host, run.host_id).hostname == "imported:rtx2080ti"


def test_an_etdump_from_executorch_becomes_a_run_with_its_op_profile():
    request = ImportRequest("etdump", "android:pixel7", ModelSpec("t8", 64), "fp32", 4,
                            log_file=FIXTURES / "executorch_t8_64px_xnnpack.etdump",
                            delegation_file=FIXTURES / "executorch_t8_64px_delegation.json")
    result = import_result(request).result
    assert result.imported and len(result.samples_ns) == 5 and result.summary.count == 5
    assert result.summary.median_ms > 0 and result.environment["kernels_mapped"]
    classes = {row.op_class for row in result.op_profile}
    assert {"conv_dw_7x7", "conv_dw_3x3", "conv_pointwise", "linear"} <= classes
    other = sum(r.total_ms for r in result.op_profile if r.op_class == "other")
    assert other < 0.2 * sum(r.total_ms for r in result.op_profile)
    unmapped = import_result(ImportRequest("etdump", "android:pixel7", ModelSpec("t8", 64), "fp32", 4,
                                           log_file=FIXTURES / "executorch_t8_64px_xnnpack.etdump")).result
    assert "conv_dw_7x7" not in {row.op_class for row in unmapped.op_profile}  # kernels unknown, not guessed
    assert not unmapped.environment["kernels_mapped"]


def test_a_file_that_is_not_an_etdump_is_refused(tmp_path):
    with pytest.raises(ToolOutputError, match="is not an ETDump"):
        import_result(request("etdump", "trtexec_sa12_fp16.log"))
    with pytest.raises(ToolOutputError, match="not a delegation.json"):
        import_result(request("etdump", "executorch_t8_64px_xnnpack.etdump",
                              delegation_file=FIXTURES / "trtexec_times.json"))


def test_a_tool_median_is_the_headline():
    """benchmark_model builds from 2023 print a median: stored as the run's median, not hidden behind the mean."""
    result = import_result(request("benchmark_model", "benchmark_model_tflite2.20_am62x_cpu.log", precision="fp32",
                                   device="am62x")).result
    assert result.summary.median_ms == pytest.approx(1239.807) and result.summary.mean_ms == pytest.approx(1240.27)
    assert result.summary.p95_ms == pytest.approx(1247.415) and result.first_ns == 1_357_602_000
    old = import_result(request("benchmark_model", "benchmark_model_tflite1.12_am57x_2019.log", precision="fp32",
                                device="am57x")).result
    assert old.summary.median_ms is None and old.summary.mean_ms == pytest.approx(137.722)


@pytest.mark.parametrize("log, median_ms", [
    ("trtexec_10.16_loadengine_shapes_batch4.log", 0.0388184),  # --loadEngine --shapes=x:4x1x28x28
    ("trtexec_8.2_loadengine_shapes_batch4.log", 0.152588),  # --shapes=x:0:4x1x28x28 (an input named x:0)
    ("trtexec_8.4_loadengine_static_batch4.log", 0.358398),  # --loadEngine of an engine built for batch 4
])
def test_a_trtexec_log_of_batch_4_imports_as_batch_4_without_flags(log, median_ms):
    imported = import_result(request("trtexec", log, precision="fp32", stated=frozenset()))
    assert imported.request.spec.batch == 4 and imported.result.summary.median_ms == median_ms
    # a --loadEngine log's "Precision: FP32" is the build options' default, not the engine's: not taken
    assert imported.request.precision == "fp32"


def test_a_log_that_contradicts_what_the_user_said_is_refused():
    log = "trtexec_10.16_loadengine_shapes_batch4.log"
    with pytest.raises(ValueError, match="the log ran batch 4 but the import says --batch 1"):
        import_result(request("trtexec", log, stated=frozenset({"batch"})))
    said = import_result(request("trtexec", log, spec=ModelSpec("sa12", batch=4), stated=frozenset({"batch"})))
    assert said.request.spec.batch == 4


def test_precision_and_resolution_come_from_a_log_that_says_them():
    built = import_result(request("trtexec", "trtexec_sa12_fp16.log", precision="fp32", stated=frozenset()))
    assert built.request.precision == "fp16"  # the echoed command built with --fp16
    with pytest.raises(ValueError, match="the log ran precision fp16 but the import says --precision fp32"):
        import_result(request("trtexec", "trtexec_sa12_fp16.log", precision="fp32", stated=frozenset({"precision"})))
    app = import_result(request("benchmark_app", "benchmark_app_t8.log", spec=ModelSpec("t8", 224),
                                precision="fp16", stated=frozenset()))
    # Model inputs: x ... [N,C,H,W] / [1,3,256,256], INFERENCE_PRECISION_HINT float32
    assert (app.request.spec.resolution, app.request.spec.batch, app.request.precision) == (256, 1, "fp32")


def test_a_binary_file_is_not_a_log(tmp_path):
    for tool in ("trtexec", "benchmark_model", "benchmark_app"):
        with pytest.raises(ToolOutputError, match=f"is not a text log .* reads the text {tool} prints"):
            import_result(request(tool, "executorch_t8_64px_xnnpack.etdump"))


def test_a_throughput_run_is_a_target_of_its_own(engine):
    """Variant 12: several requests in flight is not single-stream latency: the target says so."""
    req = request("benchmark_app", "benchmark_app_2022_cpp_static_async.log", precision="fp32", device="xeon")
    run_id = store_import(engine, import_result(req))
    with Session(engine) as session:
        assert session.get(store.Run, run_id).target == "openvino/xeon[api=async,requests=4,streams=4]"
    single = request("benchmark_app", "benchmark_app_t8.log", precision="fp32", device="xeon")
    run_id = store_import(engine, import_result(single))
    with Session(engine) as session:
        assert session.get(store.Run, run_id).target == "openvino/xeon"
