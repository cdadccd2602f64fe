"""Planning a sweep: the specs are checked before anything starts, repeats go round-robin, every
job is stored as it ends and the sweep says whether it finished."""
from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from sqlalchemy.orm import Session

from harness import store
from harness.measure import child, plan, sweep
from harness.protocol import TimingPolicy
from harness.spec import ModelSpec, Target

TARGETS = [Target("torch", "cpu"), Target("onnxruntime", "cpu")]


def fake_measurements(monkeypatch, medians_ms: dict[str, list[float]]):
    """child.measure_in_child replaced by a deterministic one: job (by backend) -> successive process medians."""
    from harness.measure import sweep as sweep_module
    from harness.protocol import RunResult
    from harness.stats import summarize

    calls = []

    def measure(job, timeout_s):
        calls.append(job.target.backend)
        ms = medians_ms[job.target.backend][min(calls.count(job.target.backend), len(medians_ms[job.target.backend])) - 1]
        samples = [int(ms * 1e6)] * 5
        return RunResult(status="ok", samples_ns=samples, summary=summarize(samples))

    monkeypatch.setattr(sweep_module, "measure_in_child", measure)
    return calls


def test_repeats_go_round_robin(engine, tmp_path, monkeypatch):
    calls = fake_measurements(monkeypatch, {"torch": [10.0], "onnxruntime": [5.0]})
    jobs = plan.plan_jobs([ModelSpec("t8")], TARGETS, threads=2, policy=TimingPolicy(), cache_dir=tmp_path)
    assert {j.cache_dir for j in jobs} == {str(tmp_path.resolve())} and len(jobs) == 2
    outcome = sweep.run_sweep(engine, jobs, "harness run", repeats=sweep.Repeats(3))
    assert calls == ["torch", "onnxruntime"] * 3 and len(outcome.run_ids) == 6


def test_repeats_auto_stops_each_job_when_its_processes_agree(engine, tmp_path, monkeypatch):
    # torch settles at once; onnxruntime wanders, then settles; both within 5 % of the last three
    calls = fake_measurements(monkeypatch, {"torch": [10.0, 10.1, 10.2],
                                            "onnxruntime": [5.0, 8.0, 5.1, 5.0, 5.05]})
    jobs = plan.plan_jobs([ModelSpec("t8")], TARGETS, threads=2, policy=TimingPolicy(), cache_dir=tmp_path)
    sweep.run_sweep(engine, jobs, "harness run --repeats auto", repeats=sweep.Repeats(None, 0.05, 3, 10))
    assert calls.count("torch") == 3 and calls.count("onnxruntime") == 5
    with Session(engine) as session:
        spreads = {r.target: r.process_spread for r in session.query(store.Run)}
    assert spreads["torch/cpu"] == pytest.approx(0.2 / 10.1) and spreads["onnxruntime/cpu"] == pytest.approx(3.0 / 5.05)


def test_repeats_auto_gives_up_at_its_maximum(engine, tmp_path, monkeypatch):
    calls = fake_measurements(monkeypatch, {"torch": [10.0, 20.0] * 10, "onnxruntime": [5.0]})
    jobs = plan.plan_jobs([ModelSpec("t8")], TARGETS, threads=2, policy=TimingPolicy(), cache_dir=tmp_path)
    sweep.run_sweep(engine, jobs, "harness run --repeats auto", repeats=sweep.Repeats(None, 0.05, 3, 6))
    assert calls.count("torch") == 6 and calls.count("onnxruntime") == 3


def test_specs_are_checked_before_a_sweep(tmp_path):
    plan.check_specs([ModelSpec("t8"), ModelSpec("t8", weights="random:3")], tmp_path)
    with pytest.raises(ValueError, match="no such checkpoint file"):
        plan.check_specs([ModelSpec("t8", weights=str(tmp_path / "missing.pth"))], tmp_path)
    with pytest.raises(ValueError, match="timm has no model named 'no_such_net'"):
        plan.check_specs([ModelSpec("timm:no_such_net")], tmp_path)


def test_a_sweep_stores_every_job_and_is_marked(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(child, "WORKER", [sys.executable, "-c", "import sys; sys.exit(1)"])
    jobs = plan.plan_jobs([ModelSpec("t8")], TARGETS, threads=1, policy=TimingPolicy(), cache_dir=tmp_path)
    seen = []
    outcome = sweep.run_sweep(engine, jobs, "harness run --device cpu", on_start=seen.append)
    assert seen == jobs and len(outcome.run_ids) == 2 and outcome.failed == 2
    with Session(engine) as session:
        assert session.get(store.Sweep, outcome.sweep_id).status == "finished"

    def interrupt(job, result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(engine, jobs, "harness run", on_done=interrupt)
    with Session(engine) as session:
        last = session.query(store.Sweep).order_by(store.Sweep.id.desc()).first()
        assert last.status == "interrupted" and len(session.query(store.Run).all()) == 3  # the finished run kept


# A worker that reports its pid and whether it was fresh (one job) or kept (--serve), and crashes on the model
# named in CRASH_ON
SERVE_REPORTING_ITS_PID = """
import json, os, signal, sys
from pathlib import Path
from harness.protocol import RunResult
from harness.stats import summarize
reply = os.fdopen(os.dup(1), "w"); os.dup2(2, 1)
fresh = sys.argv[1:] != ["--serve", "1"]  # or worker JOB RESULT: one job, in a fresh process
for line in ["\\t".join(sys.argv[1:]) + "\\n"] if fresh else sys.stdin:
    job, result = line.rstrip("\\n").split("\\t")
    model = json.loads(Path(job).read_text())["spec"]["model"]
    print(f"worker {os.getpid()} on {model}", flush=True)
    if model == os.environ.get("CRASH_ON"):
        sys.stderr.write("Fatal Python error: Aborted\\n"); sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGABRT)
    samples = [10_000_000] * 5
    siblings = 0  # the parent's other workers alive now
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(entry) != os.getpid() and \
                    int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getppid():
                siblings += 1
        except OSError:
            pass
    Path(result).write_text(RunResult(status="ok", samples_ns=samples, summary=summarize(samples),
                                      environment={"pid": os.getpid(), "fresh": fresh,
                                                   "siblings": siblings}).to_json())
    reply.write("done\\n"); reply.flush()
"""


def kept_sweep(engine, monkeypatch, jobs, repeats=sweep.Repeats()):
    monkeypatch.setattr(child, "WORKER", [sys.executable, "-c", SERVE_REPORTING_ITS_PID])
    with child.WorkerPerTarget() as kept:
        outcome = sweep.run_sweep(engine, jobs, "harness run", repeats=repeats, measure=kept)
    with Session(engine) as session:
        runs = [session.get(store.Run, i) for i in outcome.run_ids]
        return outcome, [(r.model, r.target, r.status, (r.environment or {}).get("pid"), r.log) for r in runs]


def fresh_flags(engine, outcome):
    with Session(engine) as session:
        return [session.get(store.Run, i).environment["fresh"] for i in outcome.run_ids]


def test_a_kept_worker_per_target_runs_its_models_and_a_crash_goes_on_in_a_fresh_one(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("CRASH_ON", "t12")
    specs = [ModelSpec(m) for m in ("t8", "t12", "s12", "sa12")]
    jobs = plan.plan_jobs(specs, TARGETS, threads=1, policy=TimingPolicy(), cache_dir=tmp_path)
    outcome, runs = kept_sweep(engine, monkeypatch, jobs)
    # grouped by target (in the plan's order), each target's models in order
    assert [(m, t) for m, t, *_ in runs] == [(m, t.name) for t in TARGETS for m in ("t8", "t12", "s12", "sa12")]
    assert [s for _, _, s, _, _ in runs] == ["ok", "crashed", "ok", "ok"] * 2
    assert outcome.failed == 2
    pids = [pid for *_, pid, _ in runs]
    for target in range(2):
        first, crashed, *after = pids[4 * target: 4 * target + 4]
        assert crashed is None and len(set(after)) == 1 and after[0] != first  # one fresh process after the crash
    assert pids[0] not in pids[4:]  # and another per target
    log = runs[1][4]
    assert "SIGABRT" in outcome_error(engine, outcome.run_ids[1]) and "on t12" in log and "on t8" not in log


def outcome_error(engine, run_id):
    with Session(engine) as session:
        return session.get(store.Run, run_id).error


def test_repeats_still_run_each_spec_in_a_process_of_its_own(engine, tmp_path, monkeypatch):
    jobs = plan.plan_jobs([ModelSpec("t8"), ModelSpec("t12")], TARGETS[:1], threads=1, policy=TimingPolicy(),
                          cache_dir=tmp_path)
    outcome, runs = kept_sweep(engine, monkeypatch, jobs, sweep.Repeats(3))
    assert [s for _, _, s, _, _ in runs] == ["ok"] * 6
    by_model = {m: [pid for model, _, _, pid, _ in runs if model == m] for m in ("t8", "t12")}
    assert all(len(set(pids)) == 3 for pids in by_model.values())  # three processes per spec
    assert by_model["t8"] == by_model["t12"]  # each round's process ran both models


def test_a_torch_compile_job_compiles_cold_in_a_fresh_process_once_per_key(engine, tmp_path, monkeypatch):
    from harness.measure import compile_cost

    job = plan.plan_jobs([ModelSpec("t8", 64)], [Target("torch-compile", "cpu")], threads=1,
                         policy=TimingPolicy(), cache_dir=tmp_path)[0]
    assert compile_cost.needs_cold_compile(job)  # nothing kept yet
    inductor = tmp_path / "filled"
    (inductor / "fxgraph").mkdir(parents=True)
    compiled = {"compile_ms": 4000.0, "graphs": 1, "graph_breaks": 0}
    compile_cost.keep(job, compiled, 4100.0, inductor)
    found = compile_cost.kept(job)
    assert (found.compile_ms, found.load_ms, found.graphs) == (4000.0, 4100.0, 1)
    assert (found.inductor_cache / "fxgraph").is_dir() and not compile_cost.needs_cold_compile(job)
    assert compile_cost.needs_cold_compile(replace(job, cold_compile=True))  # forced
    # another mode, precision or thread count is another key
    assert compile_cost.needs_cold_compile(replace(job, threads=2))
    assert compile_cost.needs_cold_compile(replace(job, target=Target("torch-compile", "cpu", "mode=max-autotune")))
    compile_cost.keep(job, {**compiled, "compile_ms": 3000.0}, 3100.0, inductor)  # measured again: replaced
    assert compile_cost.kept(job).compile_ms == 3000.0
    (found.inductor_cache.parent / compile_cost.RECORD).write_text("{not json")  # damaged: removed, compiled again
    assert compile_cost.kept(job) is None and not found.inductor_cache.parent.exists()
    # a layer alone, eager torch, other runtimes: nothing compiles on load
    assert not compile_cost.needs_cold_compile(replace(job, target=Target("torch", "cpu")))
    assert not compile_cost.needs_cold_compile(replace(job, layer="stem"))


def test_a_sweep_sends_a_cold_compile_to_a_fresh_process_and_the_rest_to_the_kept_one(engine, tmp_path, monkeypatch):
    from harness.measure import compile_cost

    jobs = plan.plan_jobs([ModelSpec("t8", 64), ModelSpec("t12", 64)], [Target("torch-compile", "cpu")], threads=1,
                          policy=TimingPolicy(), cache_dir=tmp_path)
    outcome, runs = kept_sweep(engine, monkeypatch, jobs)
    assert fresh_flags(engine, outcome) == [True, True] and runs[0][3] != runs[1][3]
    (tmp_path / "filled").mkdir()
    for job in jobs:  # what the real worker keeps after a cold compile
        compile_cost.keep(job, {"compile_ms": 4000.0, "graphs": 1, "graph_breaks": 0}, 4100.0, tmp_path / "filled")
    outcome, runs = kept_sweep(engine, monkeypatch, jobs)
    assert fresh_flags(engine, outcome) == [False, False] and runs[0][3] == runs[1][3]
    outcome, runs = kept_sweep(engine, monkeypatch, [replace(j, cold_compile=True) for j in jobs])
    assert fresh_flags(engine, outcome) == [True, True]


def test_no_idle_kept_worker_sits_beside_a_cold_compile(engine, tmp_path, monkeypatch):
    """torch's kept worker (0.6 GB, idle) is closed before torch.compile's cold compile starts its fresh process:
    a cold sweep's peak memory is one worker's, not two."""
    jobs = plan.plan_jobs([ModelSpec("t8", 64), ModelSpec("t12", 64)],
                          [Target("torch", "cpu"), Target("torch-compile", "cpu")], threads=1, policy=TimingPolicy(),
                          cache_dir=tmp_path)
    outcome, runs = kept_sweep(engine, monkeypatch, jobs)
    with Session(engine) as session:
        found = [(r.target, r.environment["fresh"], r.environment["siblings"])
                 for r in (session.get(store.Run, i) for i in outcome.run_ids)]
    assert found == [("torch/cpu", False, 0), ("torch/cpu", False, 0),
                     ("torch-compile/cpu", True, 0), ("torch-compile/cpu", True, 0)]


def test_the_time_left_comes_from_the_targets_own_history(engine, tmp_path):
    from helpers import HOST

    from harness.protocol import RunResult

    def ran(model, target, seconds, began=1_700_000_000.0):
        store.save_run(engine, RunResult(status="ok", started_at=began, finished_at=began + seconds),
                       spec=ModelSpec(model), target=target, threads=1, precision="fp32", host=HOST)

    for seconds in (30, 40, 50):
        ran("t8", TARGETS[0], seconds)
    ran("s12", TARGETS[0], 90)
    jobs = plan.plan_jobs([ModelSpec("t8"), ModelSpec("sa12")], TARGETS, threads=1, policy=TimingPolicy(),
                          cache_dir=tmp_path)
    took = sweep.expected_seconds(engine, jobs, HOST)
    by_job = {(j.spec.model, j.target.name): took.get(sweep.job_key(j)) for j in jobs}
    # the spec's own median on its target; else that target's; else every run's on this host
    assert by_job == {("t8", "torch/cpu"): 40, ("sa12", "torch/cpu"): 45, ("t8", "onnxruntime/cpu"): 45,
                      ("sa12", "onnxruntime/cpu"): 45}
    assert sweep.expected_seconds(engine, jobs, {**HOST, "hostname": "elsewhere"}) == {}
