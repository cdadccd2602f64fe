"""The command line: error paths give one sentence and a non-zero exit; a real t8 sweep end to end."""
from __future__ import annotations

import json
import sys

import pytest
from helpers import FIXTURES, save
from typer.testing import CliRunner

from harness import store
from harness.cli import app
from harness.measure import child

FAST = ["--warmup", "2", "--warmup-time", "0", "--min-iterations", "5", "--min-time", "0", "--resolution", "64"]


def invoke(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("args, expected", [
    (["run", "--device", "tpu"], "unknown device 'tpu'; choose one of: cpu, gpu"),
    (["run", "--device", "android:"], "unknown device 'android:'"),
    (["run", "--device", "cpu", "--backend", "coreml", "--precision", "fp32"], "no available target"),
    (["export", "--model", "t8", "--backend", "onnxruntime", "--precision", "fp16"], "exports fp32, int8, not fp16"),
    (["run", "--device", "cpu", "--backend", "tflite"], "'tflite' is not one of 'torch'"),
    (["run", "--device", "cpu", "--model", "t9"], "unknown model 't9'; choose a FastViT variant (t8, t12"),
    (["run", "--device", "cpu", "--model", "timm:no_such_net", "--backend", "torch"], "timm has no model"),
    (["run", "--device", "cpu", "--resolution", "100"], "multiple of 32"),
    (["run", "--device", "cpu", "--form", "fused"], "'fused' is not one of 'train'"),
    (["run", "--device", "cpu", "--threads", "4096"], "exceeds the"),
    (["run", "--device", "android:R58", "--threads", "8"], "no available target on device 'android:R58'"),
    (["run", "--device", "cpu", "--weights", "/no/such.pth"], "no such checkpoint file"),
    (["run", "--device", "gpu"], "no available target on device 'gpu'"),
    (["export", "--model", "t8", "--backend", "torch"], "has no artifact"),
    (["export", "--model", "t8", "--backend", "tensorrt"], "builds its artifact on the device it runs on"),
])
def test_bad_input_is_one_readable_error(tmp_path, args, expected):
    result = invoke(*args, "--db", tmp_path / "r.db") if args[0] == "run" else invoke(*args)
    assert result.exit_code != 0
    assert expected in " ".join(result.output.split()), result.output


def test_unreadable_database(db_file):
    db_file.write_bytes(b"garbage" * 1000)
    result = invoke("report", "--db", db_file)
    assert result.exit_code == 2 and "cannot open database" in result.output


@pytest.mark.parametrize("command", [["devices"], ["models", "--resolution", "64"], ["report"], ["claims"],
                                     ["query", "SELECT model, median_ms FROM runs"],
                                     ["explain", "--model", "t8"]])
def test_every_row_printing_command_takes_format(db, engine, command):
    from helpers import PROFILE

    save(engine, [2.0, 4.0], op_profile=PROFILE)
    args = [*command, *(["--db", db] if command[0] not in ("devices", "models") else [])]
    as_json = json.loads(invoke(*args, "--format", "json").output)
    assert isinstance(as_json, list) and as_json and isinstance(as_json[0], dict)
    lines = invoke(*args, "--format", "csv").output.splitlines()
    assert lines[0].split(",") == list(as_json[0]) and len(lines) == len(as_json) + 1
    assert invoke(*args).exit_code == 0  # the default, a table
    assert invoke(*args, "--format", "yaml").exit_code == 2


def test_devices_lists_every_target_with_reason():
    result = invoke("devices")
    assert result.exit_code == 0
    for target in ("torch/cpu", "onnxruntime/cpu", "openvino/cpu", "torch/gpu", "openvino/npu"):
        assert target in result.output
    assert "no CUDA device" in result.output


def test_models_table():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "sa12" in result.output and "0.69" in result.output and "76.2" in result.output


def test_export_then_cached(tmp_path):
    args = ["export", "--model", "t8", "--backend", "onnxruntime", "--resolution", "64", "--cache", tmp_path]
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == second.exit_code == 0
    path = first.output.strip().splitlines()[-1]
    assert path.endswith("model.onnx") and path == second.output.strip().splitlines()[-1]
    assert "cached" in second.output


def test_end_to_end_sweep_of_t8_on_every_cpu_backend(tmp_path):
    db = tmp_path / "results.db"
    result = invoke("run", "--device", "cpu", "--model", "t8", "--form", "both", *FAST, "--db", db,
                    "--cache", tmp_path / "cache", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for target in ("torch/cpu", "torch-compile/cpu", "onnxruntime/cpu", "openvino/cpu", "litert/cpu",
                   "executorch/cpu"):
        assert target in result.output

    query = invoke("query", "SELECT target, form, status, iterations, parity_rel FROM runs WHERE NOT published "
                            "ORDER BY id", "--format", "json", "--db", db)
    runs = json.loads(query.output)
    assert {(r["target"], r["form"]) for r in runs} == {(t, f) for f in ("train", "reparam") for t in (
        "torch/cpu", "torch-compile/cpu", "onnxruntime/cpu", "openvino/cpu", "litert/cpu", "executorch/cpu")}
    assert all(r["status"] == "ok" and r["iterations"] >= 5 and r["parity_rel"] <= 1e-3 for r in runs)

    profiled = json.loads(invoke("query", "SELECT r.target, COUNT(*) AS n, SUM(o.total_ms) AS ms FROM op_profiles o "
                                          "JOIN runs r ON r.id = o.run_id GROUP BY r.target", "--format", "json",
                                 "--db", db).output)
    assert {p["target"] for p in profiled} == {"torch/cpu", "onnxruntime/cpu", "openvino/cpu",
                                               "executorch/cpu"}  # no host LiteRT profiler
    assert all(p["n"] > 10 and p["ms"] > 0 for p in profiled)
    samples = json.loads(invoke("query", "SELECT phase, COUNT(*) AS n FROM samples GROUP BY phase", "--format",
                                "json", "--db", db).output)
    assert {s["phase"] for s in samples} == {"first", "warmup", "timed"}

    report = json.loads(invoke("report", "--format", "json", "--db", db).output)
    measured = [r for r in report if r["origin"] == "measured"]
    assert len(measured) == 12 and all(r["median_ms"] > 0 for r in measured)
    # the first sweep stored the bundled published figures beside its runs: compare shows them at once
    assert {r["target"] for r in report if r["origin"] == "published"} == {"coreml/iphone-12-pro"}
    assert "stored 7 published latencies beside your runs" in " ".join(result.output.split())
    coverage = json.loads(invoke("query", "SELECT form, SUM(delegated_nodes) AS d, SUM(portable_nodes) AS p FROM "
                                          "delegation_coverage GROUP BY form", "--format", "json", "--db", db).output)
    assert {c["form"] for c in coverage} == {"train", "reparam"} and all(c["d"] > c["p"] for c in coverage)
    env = json.loads(invoke("query", "SELECT environment FROM runs WHERE NOT published LIMIT 1", "--format", "json",
                            "--db", db).output)
    facts = json.loads(env[0]["environment"])
    assert facts["threads"] >= 1 and "torch" in facts["versions"]

    pictures = invoke("plot", "--out", tmp_path / "plots", "--model", "t8", "--resolution", "64", "--db", db)
    assert pictures.exit_code == 0, pictures.output
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["accuracy_vs_latency.png", "latency_by_backend.png", "latency_by_device.png",
                    "op_breakdown_t8.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    written = invoke("findings", "--out-dir", tmp_path / "docs", "--resolution", "64", "--db", db)
    assert written.exit_code == 0, written.output
    text = next((tmp_path / "docs").glob("findings-*.md")).read_text()
    assert "## In short" in text and "Produced by:" in text
    assert "| t8 | 64 |" in text and "## Where t8 spends its time" in text and "## The paper's claims" in text

    assert "read-only" in invoke("query", "DELETE FROM runs", "--db", db).output
    assert invoke("query", "SELECT COUNT(*) AS n FROM runs WHERE NOT published", "--format", "csv",
                  "--db", db).output.split() == ["n", "12"]


def test_a_crashing_runtime_is_recorded_and_the_sweep_goes_on(db, tmp_path, monkeypatch):
    monkeypatch.setattr(child, "WORKER", [sys.executable, "-c",
                                          "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    result = invoke("run", "--device", "cpu", "--model", "t8", "--backend", "torch", "--backend", "onnxruntime",
                    *FAST, "--db", db, "--cache", tmp_path / "cache")
    assert result.exit_code == 1 and "2 of 2 runs did not end ok (2 crashed)" in " ".join(result.output.split())
    rows = json.loads(invoke("query", "SELECT status, error, log FROM runs WHERE NOT published", "--format", "json",
                             "--db", db).output)
    assert [r["status"] for r in rows] == ["crashed", "crashed"]
    assert "SIGSEGV" in rows[0]["error"] and "reproduce with: python -m harness.measure.worker" in rows[0]["log"]
    assert "crashed t8 reparam on torch/cpu: worker died with SIGSEGV" in " ".join(result.output.split())


def test_peak_command_stores_a_gemm_throughput(db, tmp_path):
    result = invoke("peak", "--size", "64", "--backend", "torch", "--db", db, "--cache", tmp_path / "c",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["target"] == "torch/cpu" and row["status"] == "ok" and row["gflops"] > 0.1
    stored = json.loads(invoke("query", "SELECT target, gflops, gemm_size FROM host_peaks", "--format", "json",
                               "--db", db).output)
    assert stored == [{"target": "torch/cpu", "gflops": row["gflops"], "gemm_size": 64}]


def test_import_vendor_logs(tmp_path):
    db = tmp_path / "r.db"
    ok = invoke("import", FIXTURES / "trtexec_sa12_fp16.log", "--tool", "trtexec", "--device", "rtx2080ti",
                "--model", "sa12", "--precision", "fp16", "--export-times", FIXTURES / "trtexec_times.json",
                "--db", db)
    assert ok.exit_code == 0, ok.output
    ok = invoke("import", FIXTURES / "benchmark_model_xnnpack_profile.log", "--tool", "benchmark_model",
                "--device", "android:pixel7", "--model", "t8", "--threads", "4", "--db", db)
    assert ok.exit_code == 0, ok.output
    ok = invoke("import", "--tool", "manual", "--backend", "coreml", "--device", "iphone12pro", "--model", "t8",
                "--precision", "fp16", "--latency-ms", "0.8", "--note", "Xcode performance report", "--db", db)
    assert ok.exit_code == 0, ok.output
    rows = json.loads(invoke("query", "SELECT target, imported, median_ms, mean_ms, iterations, precision FROM runs "
                                      "ORDER BY id", "--format", "json", "--db", db).output)
    assert rows[0] == {"target": "tensorrt/rtx2080ti", "imported": 1, "median_ms": 0.945, "mean_ms": 0.9475,
                       "iterations": 4, "precision": "fp16"}
    assert rows[1]["target"] == "litert/android:pixel7" and rows[1]["median_ms"] is None
    assert rows[1]["mean_ms"] == pytest.approx(11.9437)
    assert rows[1]["iterations"] == 251
    assert rows[2]["median_ms"] == 0.8 and rows[2]["target"] == "coreml/iphone12pro"
    ops = json.loads(invoke("query", "SELECT op_type, op_class, calls FROM op_profiles ORDER BY id", "--format",
                            "json", "--db", db).output)
    assert len(ops) == 7
    assert ops[1] == {"op_type": "Convolution (NHWC, F32) DWConv", "op_class": "conv_dw_other", "calls": 31}
    samples = json.loads(invoke("query", "SELECT COUNT(*) AS n FROM samples WHERE run_id = 1", "--format", "json",
                                "--db", db).output)
    assert samples == [{"n": 4}]
    report = invoke("report", "--db", db, env={"COLUMNS": "200"})
    assert "(imported)" in report.output and "11.94*" in report.output and "mean: the vendor tool" in report.output


def test_a_batch_4_trtexec_log_imports_as_batch_4_without_flags(tmp_path):
    """Real logs: a --loadEngine run with --shapes=x:4x..., and one of an engine built for batch 4."""
    db = tmp_path / "r.db"
    for log in ("trtexec_10.16_loadengine_shapes_batch4.log", "trtexec_8.4_loadengine_static_batch4.log"):
        ok = invoke("import", FIXTURES / log, "--tool", "trtexec", "--device", "gpu-box", "--model", "t8", "--db", db)
        assert ok.exit_code == 0, ok.output
    rows = json.loads(invoke("query", "SELECT batch, precision FROM runs ORDER BY id", "--format", "json",
                             "--db", db).output)
    assert rows == [{"batch": 4, "precision": "fp32"}] * 2
    said = invoke("import", FIXTURES / "trtexec_10.16_loadengine_shapes_batch4.log", "--tool", "trtexec", "--device",
                  "gpu-box", "--model", "t8", "--batch", "1", "--db", db)
    assert said.exit_code == 2 and "the log ran batch 4 but the import says --batch 1" in " ".join(said.output.split())


MANUAL = ["import", "--tool", "manual", "--backend", "coreml", "--device", "iphone12pro", "--model", "t8",
          "--latency-ms", "0.8"]


def test_a_full_disk_is_said_in_one_line_and_what_was_stored_before_is_kept(tmp_path, monkeypatch, capsys):
    """SQLite really refuses to grow the file (max_page_count pinned at its size: SQLITE_FULL, as on a full disk):
    the entry point says so in one sentence with exit 2, and the run stored before is intact."""
    from harness import cli
    from harness.store import database

    db = tmp_path / "r.db"
    assert invoke(*MANUAL, "--db", db).exit_code == 0
    pragmas = database._sqlite_pragmas

    def no_room_to_grow(dbapi, record, **kwargs):
        pragmas(dbapi, record, **kwargs)
        pages = dbapi.execute("PRAGMA page_count").fetchone()[0]
        dbapi.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(database, "_sqlite_pragmas", no_room_to_grow)
    monkeypatch.setattr(sys, "argv", ["harness", *MANUAL, "--note", "x" * 100_000, "--db", str(db)])  # overflow pages
    with pytest.raises(SystemExit) as exited:
        cli.main()
    said = " ".join(capsys.readouterr().err.split())
    assert exited.value.code == 2, said
    assert "out of disk space (the results database: database or disk is full)" in said, said
    assert "run the command again" in said and "Traceback" not in said
    monkeypatch.setattr(database, "_sqlite_pragmas", pragmas)
    rows = json.loads(invoke("query", "SELECT median_ms FROM runs", "--format", "json", "--db", db).output)
    assert rows == [{"median_ms": 0.8}]


def test_a_full_disk_is_recognised_however_it_is_wrapped():
    """ENOSPC as the kernel raises it (a write to /dev/full), under the errors a caller wraps it in."""
    import errno

    from harness.commands.common import disk_full

    try:
        with open("/dev/full", "w") as full:
            full.write("x")
    except OSError as exc:
        no_space = exc
    assert no_space.errno == errno.ENOSPC
    try:
        try:
            raise no_space
        except OSError as exc:
            raise RuntimeError("storing the run failed") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped) == "No space left on device"
    assert disk_full(OSError(errno.EACCES, "Permission denied", "/x")) is None
    assert disk_full(ValueError("bad input")) is None


@pytest.mark.parametrize("args, expected", [
    (["--tool", "trtexec", FIXTURES / "trtexec_failed.log"], "Could not find plugin creator for Gelu"),
    (["--tool", "benchmark_model", FIXTURES / "benchmark_model_truncated.log"], "last line: 'Running benchmark"),
    (["--tool", "perf", FIXTURES / "trtexec_failed.log"], "unknown tool 'perf'"),
    (["--tool", "manual", "--backend", "coreml"], "needs --latency-ms"),
    (["--tool", "manual"], "needs --backend"),
    (["--tool", "trtexec"], "needs the log FILE"),
    (["--tool", "trtexec", "/no/such/log"], "cannot read /no/such/log"),
])
def test_import_refuses_bad_input(db_file, args, expected):
    result = invoke("import", *args, "--device", "somewhere", "--model", "t8", "--db", db_file)
    assert result.exit_code == 2 and expected in " ".join(result.output.split()), result.output
    assert not db_file.exists()  # checked before the database is opened


# --- bad input is refused before anything starts: one sentence, exit 2, nothing created or stored ----

@pytest.mark.parametrize("content, expected", [
    (b"", "is not a readable PyTorch checkpoint"),
    ("list", "a checkpoint must hold a dict of tensors, found list"),
    ("s12", "checkpoint does not fit fastvit_t8"),
])
def test_a_bad_checkpoint_is_refused_once_before_the_sweep(tmp_path, db_file, content, expected):
    import torch

    import fastvit

    path = tmp_path / "bad.pth"
    if content == "list":
        torch.save([1, 2, 3], path)
    elif content == "s12":
        torch.save(fastvit.create_model("s12").state_dict(), path)
    else:
        path.write_bytes(content)
    result = invoke("run", "--device", "cpu", "--model", "t8", "--weights", path, "--db", db_file)
    assert result.exit_code == 2 and expected in " ".join(result.output.split()), result.output
    assert result.output.count("error:") == 1 and not db_file.exists()


@pytest.mark.parametrize("size", ["0", "-32", "100"])
def test_a_resolution_no_model_takes_is_refused_not_replaced(db_file, size):
    """0 used to fall back silently to each model's default resolution."""
    result = invoke("run", "--device", "cpu", "--model", "t8", "--resolution", size, "--db", db_file)
    assert result.exit_code == 2 and f"resolution must be a positive multiple of 32, got {size}" in result.output
    assert result.output.count("error:") == 1 and not db_file.exists()


def test_a_size_that_cannot_fit_is_refused_naming_the_memory(db_file):
    result = invoke("run", "--device", "cpu", "--model", "sa12", "--resolution", "100000", "--db", db_file)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "sa12 at 100000x100000, batch 1, needs at least" in text, text
    assert "attention matrix" in text and "GiB available" in text and not db_file.exists()
    big_batch = invoke("export", "--model", "t8", "--backend", "onnxruntime", "--batch", "100000")
    assert big_batch.exit_code == 2 and "needs at least" in big_batch.output


@pytest.mark.parametrize("command", [["report"], ["query", "SELECT 1"], ["claims"], ["findings"], ["plot"],
                                     ["explain", "--model", "t8"]])
def test_reading_commands_refuse_a_missing_database(tmp_path, command):
    typo = tmp_path / "typo.db"
    result = invoke(*command, "--db", typo, *(["--out", tmp_path / "p"] if command == ["plot"] else []),
                    *(["--out-dir", tmp_path / "d"] if command == ["findings"] else []))
    assert result.exit_code == 2 and f"no results database at {typo}" in " ".join(result.output.split())
    assert not typo.exists() and not (tmp_path / "p").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("command", [["report"], ["claims"], ["findings"], ["plot"], ["explain", "--model", "t8"]])
def test_reading_commands_say_there_are_no_runs_yet(tmp_path, db, engine, command):
    result = invoke(*command, "--db", db, *(["--out", tmp_path / "p"] if command == ["plot"] else []),
                    *(["--out-dir", tmp_path / "d"] if command == ["findings"] else []))
    assert result.exit_code == 2 and "no runs yet; `harness run --device cpu` makes some" in result.output
    assert not (tmp_path / "p").exists() and not (tmp_path / "d").exists()
    assert json.loads(invoke("query", "SELECT COUNT(*) AS n FROM runs", "--db", db, "--format", "json").output) == [
        {"n": 0}]  # query answers an empty database: an empty result is an answer


def test_report_of_a_model_never_run(db, engine):
    save(engine, [1.0] * 3)
    result = invoke("report", "--model", "sa12", "--db", db)
    assert result.exit_code == 2 and "no runs of sa12 yet" in result.output


@pytest.mark.parametrize("sql, expected", [
    ("ATTACH DATABASE '{dir}/y.db' AS y", "would write or open a file (ATTACH)"),
    ("VACUUM INTO '{dir}/copy.db'", "would write or open a file (ATTACH)"),
    ("SELECT * FROM no_such_table", "SQL error: no such table: no_such_table"),
])
def test_query_writes_nothing_anywhere(tmp_path, db_file, sql, expected):
    store.open_engine(str(db_file)).dispose()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = invoke("query", sql.format(dir=outside), "--db", db_file)
    assert result.exit_code == 2 and expected in " ".join(result.output.split()), result.output
    assert list(outside.iterdir()) == []


def test_query_timeout(db, engine):
    result = invoke("query", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                             "SELECT COUNT(*) FROM c WHERE x < 50000000", "--timeout", "0.5", "--db", db)
    assert result.exit_code == 2 and "ran longer than 0.5 s and was stopped" in " ".join(result.output.split())


def test_tables_show_names_with_brackets_as_they_are(db, engine):
    """Rich reads [..] as markup: a phone target's delegate and an error's text must survive it."""
    save(engine, [20.0] * 3, target="litert/android:R58[delegate=gpu]")
    table = invoke("report", "--db", db, env={"COLUMNS": "220"}).output
    assert "litert/android:R58[delegate=gpu]" in table
    missing = invoke("report", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert "psycopg[binary]" in " ".join(missing.output.split()) or "cannot open database" in missing.output


def test_import_a_folder_of_logs(tmp_path, db):
    """One run per readable log, one line per file, the failed one refused with its own line; exit 1."""
    import shutil

    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("benchmark_model_tflite2.20_am62x_cpu.log", "benchmark_model_tflite1.12_am57x_2019.log",
                 "benchmark_model_failed.log"):
        shutil.copy(FIXTURES / name, folder / name)
    result = invoke("import", folder, "--tool", "benchmark_model", "--device", "am62x", "--model", "t8", "--db", db,
                    "--format", "json", env={"COLUMNS": "300"})
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "1 of 3 logs did not end ok (1 refused)" in text
    assert "refused " in text and "benchmark_model_failed.log: benchmark_model failed" in text
    rows = json.loads(invoke("query", "SELECT median_ms, mean_ms FROM runs ORDER BY id", "--format", "json",
                             "--db", db).output)
    assert len(rows) == 2 and sorted(r["median_ms"] or 0 for r in rows) == [0, pytest.approx(1239.807)]


def test_tool_text_is_printed_literally(tmp_path, db):
    """Rich markup must not eat a log's [b11] or [fusedConvActRunner.cpp::...] nor choke on [/x]."""
    log = tmp_path / "failed.log"
    log.write_text("&&&& RUNNING TensorRT.trtexec [TensorRT v8501] # trtexec --onnx=m.onnx\n"
                   "[E] [TRT] [fusedConvActRunner.cpp::getOutputs::95] Error Code 2: [/x] no kernel [b11]\n"
                   "&&&& FAILED TensorRT.trtexec [TensorRT v8501] # trtexec --onnx=m.onnx\n")
    result = invoke("import", log, "--tool", "trtexec", "--device", "gpu-box", "--model", "t8", "--db", db)
    text = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "[fusedConvActRunner.cpp::getOutputs::95] Error Code 2: [/x] no kernel [b11]" in text
