"""A job in a child process: every way the worker can end becomes a stored run, a failed job keeps its
file, and that file reproduces the run by hand."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from harness import store
from harness.measure import child, sweep
from harness.measure.environment import THREAD_COUNT_VARIABLES, THREAD_VARIABLES
from harness.protocol import PROTOCOL_VERSION, Job, PeakJob, RunResult, TimingPolicy
from harness.spec import ModelSpec, Target

QUICK = TimingPolicy(warmup_iterations=1, warmup_seconds=0, min_iterations=3, min_seconds=0)


def job(tmp_path, backend: str = "torch", **changes) -> Job:
    return Job(ModelSpec("t8", 64), Target(backend, "cpu"), 1, QUICK, str(tmp_path / "cache"), **changes)


def fake_worker(monkeypatch, code: str) -> None:
    monkeypatch.setattr(child, "WORKER", [sys.executable, "-c", code])


def test_a_crashed_workers_stderr_reaches_the_database(tmp_path, engine, monkeypatch):
    fake_worker(monkeypatch, "import os, signal, sys\n"
                             "sys.stderr.write('Fatal Python error: Segmentation fault\\n  File \"ov.py\", line 7\\n')\n"
                             "sys.stderr.flush(); os.kill(os.getpid(), signal.SIGSEGV)")
    run_id, result = sweep.time_and_store(engine, job(tmp_path))
    assert result.status == "crashed" and result.error == "worker died with SIGSEGV"
    with Session(engine) as session:
        run = session.get(store.Run, run_id)
        assert run.status == "crashed" and "SIGSEGV" in run.error
        assert 'Fatal Python error: Segmentation fault\n  File "ov.py", line 7' in run.log
        assert run.environment["recorded_by"] == "controller" and run.environment["threads"] == 1
        assert "torch" in run.environment["versions"]


def test_a_failed_job_keeps_its_file_and_reproduces_by_hand(tmp_path, monkeypatch):
    fake_worker(monkeypatch, "import sys; sys.exit('ImportError: libopenvino.so.2540: cannot open shared object')")
    the_job = job(tmp_path)
    result = child.measure_in_child(the_job, timeout_s=60)
    assert result.status == "crashed"
    assert result.error == "worker exited with code 1: ImportError: libopenvino.so.2540: cannot open shared object"
    kept = Path(result.log.split("job file kept: ")[1].split("\n")[0])
    assert kept.parent == tmp_path / "cache" / child.FAILED_JOBS and "reproduce with: python -m" in result.log
    # by hand, with the real worker: the same job, now measured
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", "harness.measure.worker", str(kept), str(out)], check=True,
                   cwd=child.REPO, timeout=300)
    reproduced = RunResult.from_json(out.read_text())
    assert reproduced.status == "ok" and len(reproduced.samples_ns) >= 3
    # the worker sized the math libraries' thread pools from the job, before loading them; the variables that shape
    # those threads and that it does not set (OPENBLAS_CORETYPE on some machines) are recorded as it found them
    inherited = {name: os.environ[name] for name in THREAD_VARIABLES
                 if name in os.environ and name not in THREAD_COUNT_VARIABLES}
    assert reproduced.environment["env"] == {**{name: "1" for name in THREAD_COUNT_VARIABLES}, **inherited}


def test_a_hanging_worker_is_stopped(tmp_path, monkeypatch):
    fake_worker(monkeypatch, "import sys, time; sys.stderr.write('loading\\n'); sys.stderr.flush(); time.sleep(60)")
    result = child.measure_in_child(job(tmp_path), timeout_s=1)
    assert result.status == "crashed" and result.error == "timed out after 1 s"
    assert "loading" in result.log


def test_an_unreadable_result_is_a_crash_not_a_traceback(tmp_path, monkeypatch):
    fake_worker(monkeypatch, "import sys; open(sys.argv[2], 'w').write('{\"status\": \"ok\"}')")
    result = child.measure_in_child(job(tmp_path), timeout_s=60)
    assert result.status == "crashed" and "the worker's result cannot be read" in result.error


def test_a_failing_peak_job_reports_as_a_peak(tmp_path, monkeypatch):
    fake_worker(monkeypatch, "import sys; sys.exit(3)")
    result = child.measure_in_child(PeakJob(Target("torch", "cpu"), 1, 64, QUICK, str(tmp_path)), timeout_s=60)
    assert result.status == "crashed" and result.gflops is None and "job file kept" in result.log


def test_an_error_inside_the_worker_keeps_its_traceback_and_environment(tmp_path):
    # a checkpoint that is not one: the worker fails while building the model
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    the_job = Job(ModelSpec("t8", 64, weights=str(bad)), Target("torch", "cpu"), 1, QUICK, str(tmp_path))
    result = child.measure_in_child(the_job, timeout_s=300)
    assert result.status == "error" and "CheckpointError" in result.error
    assert "Traceback (most recent call last)" in result.log and "job file kept" in result.log
    assert result.environment["threads"] == 1 and result.started_at is not None


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_worker_in_process(tmp_path, monkeypatch, backend):
    """The worker's own code path, run here (not in a child) so its lines are exercised directly."""
    import torch

    from harness.measure import worker
    from harness.protocol import job_to_json

    for name in THREAD_COUNT_VARIABLES:  # the worker sets these; restore them afterwards
        monkeypatch.setenv(name, "2")
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep this process's torch threads
    job_file, result_file = tmp_path / "job.json", tmp_path / "result.json"
    job_file.write_text(job_to_json(job(tmp_path, backend, profile_iterations=2)))
    assert worker.main([str(job_file), str(result_file)]) == 0
    result = RunResult.from_json(result_file.read_text())
    assert result.status == "ok" and result.parity_rel < 1e-3 and result.summary.count == len(result.samples_ns)
    assert result.op_profile and all(row.total_ms >= 0 for row in result.op_profile)
    if backend == "onnxruntime":  # the facts read from ORT's optimized graph: t8's depthwise 7x7 and 3x3, its linears
        classes = {row.op_class for row in result.op_profile}
        assert {"conv_dw_7x7", "conv_dw_3x3", "linear"} <= classes, classes
    assert sum(result.class_flops.values()) > 0
    assert (result.artifact_key is not None) == (backend != "torch")
    assert json.loads(result_file.read_text())["version"] == PROTOCOL_VERSION
    # what the run costs besides latency, measured on the way
    f = result.footprint
    assert f.load_ms > 0 and f.load_warm_ms > 0 and f.rss_before_mb > 50 and f.model_peak_mb > 0
    assert f.peak_load_mb >= f.rss_before_mb and f.peak_timing_mb > 0
    assert f.param_bytes > 3_000_000  # t8: 4.0 M parameters at 4 bytes, BatchNorm buffers folded away
    if backend == "onnxruntime":  # the .onnx holds every weight; a first export records its own time
        assert f.artifact_bytes > 0.95 * f.param_bytes and f.export_ms == f.build_ms > 0
    # where the job's time went, phase by phase, with timing one of them
    phases = result.environment["phases_s"]
    assert {"build", "flops", "load", "timing", "profile", "agreement", "warm_load"} <= set(phases)
    assert all(seconds >= 0 for seconds in phases.values()) and phases["timing"] > 0
    assert result.environment["profile_iterations"] == 2


def worker_in_this_process(tmp_path, monkeypatch):
    """run(job) -> RunResult through the worker's own entry point, in this process (the thread variables it sets
    restored afterwards, this process's torch threads kept)."""
    import torch

    from harness.measure import worker
    from harness.protocol import job_to_json

    for name in THREAD_COUNT_VARIABLES:
        monkeypatch.setenv(name, "2")
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)

    def run(the_job) -> RunResult:
        job_file, result_file = tmp_path / "job.json", tmp_path / "result.json"
        job_file.write_text(job_to_json(the_job))
        assert worker.main([str(job_file), str(result_file)]) == 0
        return RunResult.from_json(result_file.read_text())

    return run


def test_a_kept_agreement_is_reused_by_the_next_run_of_the_same_artifact_and_marked(tmp_path, monkeypatch):
    """The photographs' answers are kept per artifact, runtime, threads and host: the second run of the same
    artifact takes them (and says so), another thread count measures its own."""
    from harness.measure import agreement

    run = worker_in_this_process(tmp_path, monkeypatch)
    measured = []
    real = agreement.agreement
    monkeypatch.setattr(agreement, "agreement", lambda *a, **k: measured.append(1) or real(*a, **k))

    first = run(job(tmp_path, "onnxruntime"))
    again = run(job(tmp_path, "onnxruntime"))
    assert first.status == again.status == "ok" and len(measured) == 1
    assert again.agreement == first.agreement and first.agreement.images > 0
    assert "agreement_reused" not in first.environment
    assert again.environment["agreement_reused"]["measured_at"] <= again.started_at
    two_threads = run(replace(job(tmp_path, "onnxruntime"), threads=2))
    assert len(measured) == 2 and "agreement_reused" not in two_threads.environment
    assert two_threads.agreement.cosine > 0.99  # fp32 ONNX Runtime against fp32 torch


def test_a_run_of_an_exported_artifact_builds_no_model(tmp_path, monkeypatch):
    """Once a spec's artifact, FLOPs, output on the example input and photographs' logits are kept, a runtime that
    loads the artifact times it without torch's module: none is built, and the run records what the first did.
    torch itself still builds it (that is what it runs)."""
    from harness.measure import built

    run = worker_in_this_process(tmp_path, monkeypatch)
    builds = []
    real = built.built_model
    monkeypatch.setattr(built, "built_model", lambda *a: builds.append(1) or real(*a))

    first = run(job(tmp_path, "onnxruntime"))
    assert len(builds) == 1 and first.environment["artifact_cached"] is False
    again = run(replace(job(tmp_path, "onnxruntime"), threads=2))  # its agreement measured anew, from kept logits
    assert len(builds) == 1 and again.status == "ok" and again.environment["artifact_cached"] is True
    assert again.footprint.param_bytes == first.footprint.param_bytes > 3_000_000
    assert again.parity_rel == pytest.approx(first.parity_rel, rel=0.5) and again.parity_rel < 1e-3
    assert "agreement_reused" not in again.environment and again.agreement.cosine > 0.99
    eager = run(job(tmp_path, "torch"))
    assert len(builds) == 2 and eager.status == "ok" and eager.footprint.param_bytes == first.footprint.param_bytes


def test_a_models_flops_are_counted_once_per_spec(tmp_path, monkeypatch):
    """A sweep times one model on every target: its FLOPs come from the cache after the first count, and a
    different spec is counted anew."""
    from harness.measure import flops, worker

    counted = []
    real = flops.class_flops
    monkeypatch.setattr(flops, "class_flops", lambda model, example: counted.append(1) or real(model, example))
    first_job = job(tmp_path)
    at_128 = replace(first_job, spec=ModelSpec("t8", 128))
    model = first_job.spec.build()
    from harness.spec import example_input

    found = worker.cached_flops(first_job, model, example_input(first_job.spec))
    again = worker.cached_flops(job(tmp_path, backend="onnxruntime"), model, example_input(first_job.spec))
    assert found == again and sum(found.values()) > 0 and len(counted) == 1
    larger = worker.cached_flops(at_128, at_128.spec.build(), example_input(at_128.spec))
    assert len(counted) == 2 and sum(larger.values()) == pytest.approx(4 * sum(found.values()), rel=0.05)


@pytest.mark.parametrize("most, median_ms, expected", [
    (20, 10.0, 20),    # a fast model: the count asked for (0.2 s)
    (20, 140.0, 7),    # a slow one: about a second of inferences
    (20, 2000.0, 3),   # a very slow one: never fewer than three
    (2, 2000.0, 2),    # nor more than asked
])
def test_the_op_profile_takes_about_a_second_of_a_slow_model(most, median_ms, expected):
    from harness.measure.worker import profile_iterations

    assert profile_iterations(most, median_ms) == expected


# --- one kept worker for many small jobs (harness layers) -----------------------------------------------

def layer_jobs(tmp_path, backend: str = "onnxruntime") -> list[Job]:
    from harness.measure.layers import OVERHEAD, distinct_layers
    from harness.opclass import OVERHEAD_SIGNATURE

    spec = ModelSpec("t8", 64)
    chosen = [(OVERHEAD, OVERHEAD_SIGNATURE)] + [(layer.path, layer.signature) for layer in distinct_layers(spec)[:3]]
    return [Job(spec, Target(backend, "cpu"), 1, QUICK, str(tmp_path / "cache"), layer=path, layer_signature=sig,
                layer_count=1) for path, sig in chosen]


def test_a_kept_worker_runs_every_layer_in_one_process(tmp_path):
    worker = child.KeptWorker(threads=1)
    try:
        results = [worker.measure(j, timeout_s=300) for j in layer_jobs(tmp_path)]
        pid = worker.proc.pid
        assert [r.status for r in results] == ["ok"] * 4, [r.error for r in results]
        assert all(r.parity_rel < 1e-3 and len(r.samples_ns) >= 3 for r in results)
        assert len({r.environment["layer_path"] for r in results}) == 4
        again = worker.measure(layer_jobs(tmp_path)[1], timeout_s=300)
        assert again.status == "ok" and again.environment["artifact_cached"] and worker.proc.pid == pid
    finally:
        worker.close()
    assert worker.proc is None


SERVE_THAT_CRASHES_ON_ONE_LAYER = """
import json, os, signal, sys
from pathlib import Path
from harness.protocol import RunResult
reply = os.fdopen(os.dup(1), "w"); os.dup2(2, 1)
for n, line in enumerate(sys.stdin):
    job, result = line.rstrip("\\n").split("\\t")
    print(f"worker {os.getpid()} on job {n}", flush=True)
    if json.loads(Path(job).read_text())["layer"] == os.environ["CRASH_ON"]:
        sys.stderr.write("Fatal Python error: Segmentation fault\\n"); sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    Path(result).write_text(RunResult(status="ok", environment={"pid": os.getpid()}).to_json())
    reply.write("done\\n"); reply.flush()
"""


def test_a_crash_is_stored_against_its_layer_and_the_next_layer_gets_a_new_process(tmp_path, monkeypatch, engine):
    fake_worker(monkeypatch, SERVE_THAT_CRASHES_ON_ONE_LAYER)
    jobs = layer_jobs(tmp_path)
    monkeypatch.setenv("CRASH_ON", jobs[1].layer)
    with child.WorkerPerTarget() as kept:
        outcome = sweep.run_sweep(engine, jobs, "harness layers", measure=kept)
    assert outcome.statuses == ["ok", "crashed", "ok", "ok"]
    with Session(engine) as session:
        runs = [session.get(store.Run, i) for i in outcome.run_ids]
        crashed = runs[1]
        assert crashed.layer == jobs[1].layer_signature and crashed.error == "worker died with SIGSEGV"
        assert "Fatal Python error: Segmentation fault" in crashed.log and "on job 1" in crashed.log
        assert "on job 0" not in crashed.log  # only what the process printed for this job
        assert "job file kept" in crashed.log
        first, after = runs[0].environment["pid"], {runs[2].environment["pid"], runs[3].environment["pid"]}
        assert len(after) == 1 and first not in after  # a new process for the rest, then kept


SERVE_AFTER_A_JOB_THAT_FRAGMENTS_THE_HEAP = """
import io, json, sys
from pathlib import Path
from harness.measure import footprint, worker
left = []
def job(job_path, result_path, threads=None):
    if job_path.name == "large":  # a large model's many buffers, a few of them outliving the job
        buffers = [bytes(2000) for _ in range(100_000)]
        left.extend(buffers[::50])
        del buffers
    result_path.write_text(json.dumps({"resident_mb": footprint.resident_mb()}))
worker.run_job_file = job
folder = Path(sys.argv[1])
sys.stdin = io.StringIO("".join(f"{folder / name}\\t{folder / name}.json\\n" for name in ("large", "next")))
worker.serve(1)
"""


def test_a_kept_worker_gives_the_heap_back_between_jobs(tmp_path):
    """The next job starts on a trimmed heap, not amid the free pages the last one left (a kept worker timed
    the model after a large one 1.19x slower than a fresh process until it did)."""
    subprocess.run([sys.executable, "-c", SERVE_AFTER_A_JOB_THAT_FRAGMENTS_THE_HEAP, str(tmp_path)], check=True,
                   capture_output=True, timeout=60)
    after_large = json.loads((tmp_path / "large.json").read_text())["resident_mb"]
    at_next = json.loads((tmp_path / "next.json").read_text())["resident_mb"]
    assert after_large - at_next > 150, (after_large, at_next)  # of the ~200 MB freed, only the survivors held


SERVE_THAT_EXPORTS = """
import json, os, sys
from pathlib import Path
from harness.protocol import RunResult
reply = os.fdopen(os.dup(1), "w"); os.dup2(2, 1)
for line in sys.stdin:
    job, result = line.rstrip("\\n").split("\\t")
    cached = json.loads(Path(job).read_text())["spec"]["resolution"] != 128  # the 128 one exports
    Path(result).write_text(RunResult(status="ok", environment={"pid": os.getpid(), "artifact_cached": cached}).to_json())
    reply.write("done\\n"); reply.flush()
"""


def test_a_worker_that_exported_a_model_is_replaced_and_one_that_found_its_artifact_kept(tmp_path, monkeypatch):
    """An export leaves the largest heap a worker holds: the next job gets a new process; cached artifacts and
    layers alone keep the worker."""
    fake_worker(monkeypatch, SERVE_THAT_EXPORTS)
    specs = [ModelSpec("t8", 64), ModelSpec("t8", 96), ModelSpec("t8", 128), ModelSpec("t8", 160)]
    jobs = [replace(job(tmp_path, "onnxruntime"), spec=spec) for spec in specs]
    with child.WorkerPerTarget() as kept:
        pids = [kept(j, 60).environment["pid"] for j in jobs]
        layer = replace(jobs[2], layer="stem")  # a layer's export does not retire it
        pids += [kept(layer, 60).environment["pid"], kept(jobs[3], 60).environment["pid"]]
    assert pids[0] == pids[1] == pids[2]  # the export ran in the kept worker...
    assert pids[3] != pids[2]  # ...which the next job did not share
    assert pids[3] == pids[4] == pids[5]


def test_a_hanging_kept_worker_is_stopped_and_replaced(tmp_path, monkeypatch):
    fake_worker(monkeypatch, "import sys, time\nfor line in sys.stdin: time.sleep(60)")
    worker = child.KeptWorker(threads=1)
    try:
        result = worker.measure(layer_jobs(tmp_path)[0], timeout_s=1)
        assert result.status == "crashed" and result.error == "timed out after 1 s" and worker.proc is None
    finally:
        worker.close()


def test_a_kept_worker_refuses_a_job_of_another_thread_count(tmp_path):
    worker = child.KeptWorker(threads=2)
    with pytest.raises(ValueError, match="kept for 2 threads cannot run a job of 1"):
        worker.measure(layer_jobs(tmp_path)[0], timeout_s=10)
    assert worker.proc is None


def test_a_worker_ends_without_teardown_but_runs_its_exit_handlers_and_flushes(tmp_path):
    """exit_now skips the interpreter's teardown (seconds with torch loaded) yet keeps what an exit must do: the
    registered handlers (a runtime's pools) run, buffered output is written, the exit code is the job's."""
    marker = tmp_path / "handler-ran"
    code = ("import atexit, sys\n"
            "from harness.measure.worker import exit_now\n"
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
            "print('buffered', end='')\n"
            "sys.stderr.write('err')\n"
            "exit_now(3)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=child.REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout == "buffered" and done.stderr == "err"
    assert marker.read_text() == "ran"
