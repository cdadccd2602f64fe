"""What a run costs besides latency: the worker's memory windows and sizes, the cache's build time, vendor
logs' load and memory lines, and the columns, `compare --metric` and findings that show them."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from helpers import FIXTURES, save
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from harness import store
from harness.cli import app
from harness.measure import cache, footprint
from harness.ingest.logs import ImportRequest, import_result, store_import
from harness.protocol import Footprint
from harness.spec import ModelSpec

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="phase peaks need /proc/self/clear_refs")


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


@linux
def test_a_phase_peak_sees_what_the_phase_allocated_and_not_before():
    # blocks past glibc's largest mmap threshold (32 MiB): fresh pages, whatever this process freed before
    big = np.ones(96 * 2**20 // 8)
    del big
    footprint.release_freed()
    assert footprint.reset_peak()
    before = footprint.peak_mb()
    held = np.ones(48 * 2**20 // 8)
    after = footprint.peak_mb()
    assert 44 < after - before < 60 and footprint.resident_mb() >= before + 44
    del held
    footprint.release_freed()  # as the worker does before each window: a library that raised malloc's mmap
    footprint.reset_peak()  # threshold (mallopt) leaves a freed block in the heap until it is trimmed
    assert footprint.peak_mb() < after - 40  # a new window starts at what is resident now


def test_artifact_and_parameter_bytes(tmp_path):
    entry = tmp_path / "key"
    entry.mkdir()
    (entry / "model.xml").write_bytes(b"x" * 1000)
    (entry / "model.bin").write_bytes(b"w" * 50_000)  # OpenVINO's weights beside the .xml
    (entry / cache.MANIFEST).write_text("{}")
    assert footprint.artifact_bytes(entry / "model.xml") == 51_000
    assert footprint.param_bytes(torch.nn.Linear(10, 20)) == (10 * 20 + 20) * 4
    assert footprint.param_bytes(torch.nn.BatchNorm2d(8)) == (8 * 2 + 8 * 2) * 4 + 8  # num_batches_tracked: int64


def test_the_cache_records_how_long_an_export_took(tmp_path):
    import time

    def export(out):
        time.sleep(0.05)
        (out / "m.bin").write_bytes(b"w")
        return out / "m.bin"

    path, _ = cache.get_or_build(tmp_path, {"k": 1}, "m.bin", export)
    assert 0.05 <= cache.build_seconds(path) < 5
    (path.parent / cache.MANIFEST).write_text(json.dumps({"files": {}}))  # an entry from before build times
    assert cache.build_seconds(path) is None


def request(tool: str, log: str, **changes) -> ImportRequest:
    return ImportRequest(**{"tool": tool, "device": "dev", "spec": ModelSpec("t8"), "precision": "fp32", "threads": 1,
                            "log_file": FIXTURES / log, "stated": frozenset(), **changes})


@pytest.mark.parametrize("tool, log, expected", [
    # LiteRT 2.20 on a TI AM62x: "Initialized session in 614.333ms", "The input model file size (MB): 67.3128",
    # "Memory footprint delta from the start of the tool (MB): init=146.363 overall=150.141"
    ("benchmark_model", "benchmark_model_tflite2.20_am62x_xnnpack.log",
     Footprint(load_ms=614.333, artifact_bytes=67_312_800, model_peak_mb=150.141)),
    # TensorRT 10.16 --loadEngine: "Loaded engine size: 6 MiB", "Engine deserialized in 0.0245724 sec",
    # TensorRT-managed "... now: CPU 0, GPU 8 (MiB)"
    ("trtexec", "trtexec_10.16_loadengine_shapes_batch4.log",
     Footprint(load_ms=pytest.approx(24.5724), artifact_bytes=6 * 2**20, gpu_peak_mb=8.0)),
    ("trtexec", "trtexec_8.4_loadengine_static_batch4.log",
     Footprint(load_ms=pytest.approx(511.498), artifact_bytes=4 * 2**20, gpu_peak_mb=4.0)),
    # OpenVINO benchmark_app on our t8 IR: "Read model took 6.85 ms", "Compile model took 77.41 ms",
    # compilation memory "Peak 494348 KB" -> "Peak 678780 KB", "Compile model ram used 184432 KB"
    ("benchmark_app", "benchmark_app_t8.log",
     Footprint(load_ms=pytest.approx(84.26), rss_before_mb=pytest.approx(494348 / 1024),
               peak_load_mb=pytest.approx(678780 / 1024), model_peak_mb=pytest.approx(184432 / 1024))),
])
def test_imported_logs_carry_the_load_and_memory_their_tool_printed(engine, tool, log, expected):
    imported = import_result(request(tool, log))
    assert imported.result.footprint == expected
    run_id = store_import(engine, imported)
    with Session(engine) as session:
        run = session.get(store.Run, run_id)
        assert (run.load_ms, run.artifact_bytes, run.model_peak_mb, run.gpu_peak_mb) == (
            expected.load_ms, expected.artifact_bytes, expected.model_peak_mb, expected.gpu_peak_mb)


def test_compare_by_memory_load_and_size_and_findings_show_them(tmp_path, db, engine):
    fp = dict(load_ms=80.0, model_peak_mb=40.0, artifact_bytes=16_000_000)
    save(engine, [10.0] * 20, model="t8", target="onnxruntime/cpu", footprint=Footprint(**fp))
    save(engine, [8.0] * 20, model="t8", target="openvino/cpu", footprint=Footprint(load_ms=130.0, model_peak_mb=65.0,
                                                                                    artifact_bytes=16_100_000))
    save(engine, [9.0] * 20, model="s12", target="openvino/cpu")  # a run from before footprints: no cell
    rows = json.loads(invoke("compare", "--metric", "memory", "--format", "json", "--db", db).output)
    assert {(r["name"], r["target"]): r["value"] for r in rows} == {("t8", "onnxruntime/cpu"): 40.0,
                                                                    ("t8", "openvino/cpu"): 65.0}
    assert {r["kind"] for r in rows} == {"memory_mib"}  # no claims: they are about latency
    size = json.loads(invoke("compare", "--metric", "size", "--format", "json", "--db", db).output)
    assert sorted(r["value"] for r in size) == [16.0, 16.1]
    table = " ".join(invoke("compare", "--metric", "load", "--db", db, env={"COLUMNS": "200"}).output.split())
    assert "load time per device and target, ms" in table and "130.00" in table and "speedup" not in table
    report = json.loads(invoke("report", "--format", "json", "--db", db).output)
    assert {(r["target"], r["model"]): (r["load_ms"], r["model_mb"], r["artifact_mb"]) for r in report}[
        ("openvino/cpu", "t8")] == (130.0, 65.0, 16.1)
    assert invoke("findings", "--out-dir", tmp_path, "--db", db).exit_code == 0
    text = next(tmp_path.glob("findings-*.md")).read_text()
    assert "| t8 | openvino/cpu | 8.00 | 130.00 | 65.00 | 16.10 |" in text
    empty = invoke("compare", "--metric", "memory", "--resolution", "384", "--db", db)
    assert empty.exit_code == 2 and "records memory figures yet" in " ".join(empty.output.split())
