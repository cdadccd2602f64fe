"""Qualcomm AI Hub behind `harness run`, with no network: the real qai-hub client and the real sweep, worker and
store, the client's REST layer answered by recordings built from its own message schemas (tests/aihub_farm.py).
Covered: a completed profile with per-layer compute units, a compile failure with the service's message, a job
still running when the sweep stops and a restart that resumes it without paying twice, and a missing token; and
what costs a paying user quota, each counted in jobs the service created: an upgrade of the client or of ONNX
Runtime with the uploaded model unchanged, two runs at once on two devices (and on one), a runtime the device lacks
or a precision its runtime is not compiled to, a failure that is not the model's (retried) against a compile the
service refused (kept), and `--repeats 2`."""
from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import aihub_farm
from harness import store
from harness.cli import app
from harness.measure import sweep
from harness.measure.worker import run_job_file
from harness.protocol import RunResult, job_to_json

DEVICE = "aihub:Samsung Galaxy S24 (Family)"
# the failure reason of a real AI Hub compile job (qualcomm/ai-hub-models issue #280; tests/fixtures/SOURCES.md)
REFUSED = "Conversion to context binary failed with exit code 14"


def in_process(job, timeout_s: float) -> RunResult:
    """A job through the worker's own entry point (job file in, result file out), in this process, where the
    recorded service answers the client."""
    folder = Path(tempfile.mkdtemp(prefix="job-", dir=job.cache_dir))  # one per job: the sweep runs them at once
    job_path, result_path = folder / "job.json", folder / "result.json"
    job_path.write_text(job_to_json(job))
    run_job_file(job_path, result_path)
    return RunResult.from_json(result_path.read_text())


@pytest.fixture
def farm(tmp_path, monkeypatch):
    """The recorded service, a configured token in a fresh home, and jobs run in this process."""
    from backends import aihub

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HARNESS_AIHUB_LEDGER", str(tmp_path / "ledger" / "aihub-jobs.sqlite"))
    aihub_farm.write_token(tmp_path / "home")
    aihub.refusal.cache_clear()
    found = aihub_farm.RecordedFarm()
    aihub_farm.install(monkeypatch, found)
    monkeypatch.setattr(sweep, "measure_in_child", in_process)
    return found


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def run(tmp_path, db, *extra):
    return invoke("run", "--device", DEVICE, "--model", "t8", "--resolution", "64", "--cache", tmp_path / "cache",
                  "--db", db, *extra)


def runs(db) -> list:
    engine = store.open_engine(str(db))
    with Session(engine) as session:
        found = [(r, r.host) for r in session.query(store.Run).order_by(store.Run.id)]
        for r, _ in found:
            r.samples, r.op_profiles  # loaded while the session is open
        session.expunge_all()
    engine.dispose()
    return found


def test_a_completed_profile_is_a_run_with_every_inference_and_each_layers_compute_unit(tmp_path, db_file, farm):
    result = run(tmp_path, db_file, "--backend", "aihub-tflite")
    assert result.exit_code == 0, result.output
    (run_row, host), = [(r, h) for r, h in runs(db_file) if not r.published]
    assert run_row.status == "ok" and run_row.target == f"aihub-tflite/{DEVICE}"
    timed = sorted(s.latency_ns for s in run_row.samples if s.phase == "timed")
    assert len(timed) == 100 and run_row.median_ms == pytest.approx(4.353)  # the device's own times, in us
    assert (host.hostname, host.cpu_model, host.os) == (DEVICE, "qualcomm-snapdragon-8gen3", "14")
    env = run_row.environment
    # one inference job both profiled the model and ran our input (the client's profile=True)
    assert set(env["aihub_jobs"]) == {"compile", "inference"} and farm.created == {"compile": 1, "inference": 1}
    assert env["aihub_urls"]["inference"].startswith("https://app.aihub.qualcomm.com/jobs/")
    assert env["aihub_estimated_ms"] == pytest.approx(4.205) and env["aihub_memory_peak_range_mb"] == [24.0, 32.0]
    assert run_row.model_peak_mb == 32.0  # inference_memory_peak_range, not the deprecated after_execution field
    assert env["op_profile_statistic"].startswith("minimum")
    units = env["compute_units"]
    layers = len(run_row.op_profiles)
    assert sum(u["layers"] for u in units.values()) == layers > 100
    assert units["NPU"]["layers"] > units["CPU"]["layers"] > 0  # convolutions on the NPU, GELU's Erf on the CPU
    # nearly every FLOP is a convolution's or a GEMM's, and those ran on the NPU
    assert units["NPU"]["flops_share"] > 0.95 and sum(u["flops_share"] for u in units.values()) == pytest.approx(1)
    convs = [o for o in run_row.op_profiles if o.op_type == "Conv"]
    assert convs and all(o.op_class.startswith("conv") and o.compute_unit == "NPU" for o in convs)
    assert sum(o.compute_unit == "CPU" for o in run_row.op_profiles) == units["CPU"]["layers"]  # SQL sees it too
    # parity from the device's own output (fp16 on the NPU), judged as fp16; load times from the profile
    assert env["parity_from"] == "device" and run_row.parity_rel < 2e-2
    assert run_row.load_ms == pytest.approx(1374.293) and run_row.load_warm_ms == pytest.approx(277.823)
    table = json.loads(invoke("compare", "--resolution", 64, "--format", "json", "--db", db_file).output)
    assert any(r["kind"] == "latency_ms" and r["target"] == f"aihub-tflite/{DEVICE}" and r["name"] == "t8"
               for r in table)
    from harness.web.app import create_app

    page = create_app(store.open_reader(str(db_file))).test_client().get(f"/run/{run_row.id}").get_data(as_text=True)
    assert 'id="compute-units"' in page and env["aihub_urls"]["compile"] in page


def test_fp16_is_the_float_model_compiled_to_fp16_and_judged_as_fp16(tmp_path, db_file, farm):
    result = run(tmp_path, db_file, "--backend", "aihub-qnn", "--precision", "fp16")
    assert result.exit_code == 0, result.output
    (run_row, _), = [(r, h) for r, h in runs(db_file) if not r.published]
    assert (run_row.status, run_row.precision) == ("ok", "fp16") and run_row.parity_rel < 2e-2
    assert farm.compile_options == ["--target_runtime qnn_context_binary --quantize_full_type float16"]


def test_a_compile_the_service_refuses_is_a_run_with_its_message(tmp_path, db_file, farm):
    farm.compile_failure = REFUSED
    result = run(tmp_path, db_file, "--backend", "aihub-qnn")
    assert result.exit_code == 1  # the sweep ran; one run did not end ok
    (run_row, host), = [(r, h) for r, h in runs(db_file) if not r.published]
    assert run_row.status == "error" and REFUSED in run_row.error and "compile job" in run_row.error
    assert host.hostname == DEVICE  # the finding belongs to the device, like a measurement
    again = run(tmp_path, db_file, "--backend", "aihub-qnn")
    assert again.exit_code == 1 and farm.created["compile"] == 1  # the failure is reported again, not paid again


def test_a_job_still_running_when_the_sweep_stops_is_resumed_not_paid_twice(tmp_path, db_file, farm, monkeypatch):
    from backends import aihub

    monkeypatch.setattr(aihub, "WAIT_S", 2)
    farm.hold = {"inference"}  # the device queue is long: the inference job is still running
    first = run(tmp_path, db_file, "--backend", "aihub-onnx")
    assert first.exit_code == 1
    (stopped, _), = [(r, h) for r, h in runs(db_file) if not r.published]
    assert stopped.status == "error" and "has not finished" in stopped.error and "resumes" in stopped.error
    entries = aihub.Ledger().entries()
    assert [(key.split("|", 1)[0], state) for key, _, state in entries] == [("compile", "submitted"),
                                                                            ("inference", "submitted")]
    assert all("Samsung Galaxy S24 (Family)|14" in key for key, _, _ in entries)  # the device's name and OS
    farm.hold = set()  # it finished while no sweep was waiting
    second = run(tmp_path, db_file, "--backend", "aihub-onnx")
    assert second.exit_code == 0, second.output
    resumed = [r for r, _ in runs(db_file) if not r.published][-1]
    assert resumed.status == "ok" and resumed.environment["aihub_resumed"] == ["compile", "inference"]
    assert farm.created == {"compile": 1, "inference": 1}


def test_a_sweep_waits_on_every_farm_job_at_once_and_times_local_ones_alone(tmp_path, db_file, farm):
    from harness.measure.plan import plan_jobs
    from harness.measure.sweep import run_sweep
    from harness.protocol import TimingPolicy
    from harness.spec import ModelSpec, Target

    spans, lock = [], threading.Lock()

    def waiting(job, timeout_s):  # a worker that waits on its jobs (farm) or times its model (local)
        began = time.monotonic()
        time.sleep(0.5)
        with lock:
            spans.append((job.target.device, began, time.monotonic()))
        return RunResult(status="error", error="recorded wait")

    targets = [Target(b, DEVICE) for b in ("aihub-tflite", "aihub-onnx", "aihub-qnn")]
    targets += [Target("torch", "cpu"), Target("onnxruntime", "cpu")]
    jobs = plan_jobs([ModelSpec("t8", 64, 1, "reparam")], targets, threads=1, policy=TimingPolicy(),
                     cache_dir=tmp_path / "cache")
    engine = store.open_engine(str(db_file))
    outcome = run_sweep(engine, jobs, "harness run (test)", measure=waiting)
    engine.dispose()
    assert len(outcome.run_ids) == 5
    farm_spans = [(b, e) for d, b, e in spans if d == DEVICE]
    local = sorted((b, e) for d, b, e in spans if d == "cpu")
    assert max(b for b, _ in farm_spans) < min(e for _, e in farm_spans)  # all three waited at the same time
    assert local[0][1] <= local[1][0]  # this machine's jobs one after another: timing needs it to itself
    assert {h.hostname for _, h in runs(db_file)} >= {DEVICE}


def test_without_a_token_one_sentence_says_how_to_set_it(tmp_path, db_file, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    for args in (("run", "--device", DEVICE, "--model", "t8", "--db", db_file), ("devices", "--aihub")):
        result = invoke(*args)
        assert result.exit_code == 2 and "qai-hub configure --api_token" in " ".join(result.output.split())
        assert "Traceback" not in result.output
    assert not db_file.exists()


def test_devices_lists_the_farm_with_chipset_os_and_runtimes(farm):
    rows = json.loads(invoke("devices", "--aihub", "--format", "json").output)
    s24 = next(r for r in rows if r["device"] == "Samsung Galaxy S24 (Family)")
    assert s24 == {"device": "Samsung Galaxy S24 (Family)", "chipset": "qualcomm-snapdragon-8gen3", "os": "14",
                   "runtimes": "aihub-tflite, aihub-onnx, aihub-qnn", "--device": DEVICE}
    pixel = next(r for r in rows if r["device"] == "Google Pixel 7")
    assert pixel["runtimes"] == "aihub-tflite"


# --- what costs a paying user quota: counted in the jobs the service created -------------------------------------

def test_an_upgrade_of_the_client_or_of_onnx_runtime_with_the_same_model_submits_nothing(tmp_path, db_file, farm,
                                                                                        monkeypatch):
    from backends import aihub

    first = run(tmp_path, db_file, "--backend", "aihub-tflite")
    assert first.exit_code == 0, first.output
    real = aihub.module_version
    monkeypatch.setattr(aihub, "module_version", lambda name: "99.0" if name == "qai-hub" else real(name))
    monkeypatch.setattr(aihub.AIHubBackend, "versions", lambda self: {"qai-hub": "99.0", "onnxruntime": "9.9.9"})
    second = run(tmp_path, db_file, "--backend", "aihub-tflite")
    assert second.exit_code == 0, second.output
    artifacts = list((tmp_path / "cache").rglob("model.onnx"))
    assert len(artifacts) == 2  # the upgrade made a new cache entry, exported anew: the same bytes
    assert len({aihub.model_digest(a) for a in artifacts}) == 1
    assert farm.created == {"compile": 1, "inference": 1}
    latest = [r for r, _ in runs(db_file) if not r.published][-1]
    assert latest.environment["aihub_resumed"] == ["compile", "inference"]


def test_two_runs_at_once_on_two_devices_create_each_job_once(tmp_path, farm):
    """Two measurements in parallel on two devices, and a third on the first device beside them: every job once."""
    from backends import aihub
    from harness.spec import ModelSpec, example_input

    artifact = export_t8(tmp_path)
    example = example_input(ModelSpec("t8", 64)).numpy()
    backend = aihub.AIHubBackend("aihub-tflite")
    devices = ["aihub:Samsung Galaxy S24 (Family)", "aihub:Samsung Galaxy S23 (Family)",
               "aihub:Samsung Galaxy S24 (Family)"]
    results, errors = [], []

    def measure(device):
        try:
            results.append(backend.time_remote(artifact, device, 1, None, example=example,
                                               client=aihub_farm.client(tmp_path)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=measure, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(results) == 3
    assert farm.created == {"compile": 2, "inference": 2}  # one of each per device; the third run waited on them
    assert len(aihub.Ledger().entries()) == 4


@pytest.mark.parametrize("device, backend, precision, says", [
    ("Google Pixel 7", "aihub-onnx", "fp32", "does not run onnx"),
    ("Samsung Galaxy S24 (Family)", "aihub-tflite", "fp16", "not fp16"),
    ("Samsung Galaxy S99", "aihub-tflite", "fp32", "no device named 'Samsung Galaxy S99'"),
])
def test_what_the_device_cannot_run_is_refused_before_any_job(tmp_path, db_file, farm, device, backend, precision,
                                                              says):
    result = invoke("run", "--device", f"aihub:{device}", "--backend", backend, "--precision", precision,
                    "--model", "t8", "--resolution", "64", "--cache", tmp_path / "cache", "--db", db_file)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and says in text and "Traceback" not in text, text
    assert farm.created == {} and not db_file.exists()


def test_a_failure_not_the_models_is_retried_and_a_refused_compile_is_kept_until_asked(tmp_path, db_file, farm):
    farm.inference_failures = ["The input dataset has expired"]
    first = run(tmp_path, db_file, "--backend", "aihub-tflite")
    assert first.exit_code == 1
    failed = [r for r, _ in runs(db_file) if not r.published][-1]
    assert "expired" in failed.error and "the next run submits this inference job again" in failed.error
    second = run(tmp_path, db_file, "--backend", "aihub-tflite")
    assert second.exit_code == 0, second.output
    retried = [r for r, _ in runs(db_file) if not r.published][-1]
    assert retried.environment["aihub_retried"] == ["inference"] and retried.environment["aihub_resumed"] == [
        "compile"]
    assert farm.created == {"compile": 1, "inference": 2}

    farm.compile_failure = REFUSED
    refused = run(tmp_path, db_file, "--backend", "aihub-qnn")
    again = run(tmp_path, db_file, "--backend", "aihub-qnn")
    assert refused.exit_code == again.exit_code == 1 and farm.created["compile"] == 2
    kept = [r for r, _ in runs(db_file) if not r.published][-1]
    assert REFUSED in kept.error and "--retry-failed" in kept.error
    farm.compile_failure = None  # the service fixed its compiler: the user asks again
    asked = run(tmp_path, db_file, "--backend", "aihub-qnn", "--retry-failed")
    assert asked.exit_code == 0, asked.output
    assert farm.created["compile"] == 3


def test_repeats_on_the_farm_are_new_measurements(tmp_path, db_file, farm):
    result = run(tmp_path, db_file, "--backend", "aihub-tflite", "--repeats", "2")
    assert result.exit_code == 0, result.output
    assert "each repetition is an inference job of its own" in " ".join(result.output.split())
    assert farm.created == {"compile": 1, "inference": 2}
    measured = [r for r, _ in runs(db_file) if not r.published]
    assert [r.environment["aihub_repeat"] for r in measured] == [0, 1]
    assert measured[0].environment["aihub_jobs"]["inference"] != measured[1].environment["aihub_jobs"]["inference"]


def export_t8(tmp_path: Path) -> Path:
    """t8 at 64 px exported as AI Hub's targets upload it (the fp32 ONNX)."""
    from backends import BACKENDS
    from harness.measure.artifacts import spec_artifact
    from harness.spec import ModelSpec

    path, _ = spec_artifact(ModelSpec("t8", 64), BACKENDS["aihub-tflite"], "fp32", tmp_path / "cache")
    return path


def test_measured_and_published_rows_of_one_device_meet_on_one_target_with_one_statistic(tmp_path, db_file, farm):
    """ResNet-50 on the S24 (the phone itself, as qai-hub-models names it) measured here and from qai-hub-models'
    perf.yaml: one target, and compare sets the service's estimate beside the estimate it publishes."""
    zoo = Path(__file__).parent / "fixtures" / "qai_hub_models"
    assert invoke("published", "--aihub-models", zoo, "--aihub-device", "Samsung Galaxy S24", "--db",
                  db_file).exit_code == 0
    result = invoke("run", "--device", "aihub:Samsung Galaxy S24", "--backend", "aihub-tflite", "--model",
                    "resnet50", "--cache", tmp_path / "cache", "--db", db_file)
    assert result.exit_code == 0, result.output
    rows = json.loads(invoke("compare", "--format", "json", "--db", db_file).output)
    cells = {r["origin"]: r for r in rows if r["kind"] == "latency_ms" and r["name"] == "timm:resnet50"
             and r["target"] == "aihub-tflite/aihub:Samsung Galaxy S24"}
    assert set(cells) == {"measured", "published"}
    measured = [r for r, _ in runs(db_file) if not r.published and r.model == "timm:resnet50"][-1]
    assert cells["measured"]["value"] == measured.environment["aihub_estimated_ms"] != measured.median_ms
    assert not any(r["target"].startswith("aihub-qnn/") for r in rows if r["origin"] == "published")
