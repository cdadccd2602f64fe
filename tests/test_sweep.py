"""Planning a sweep: the specs are checked before anything starts, repeats go round-robin, every
job is stored as it ends and the sweep says whether it finished."""
from __future__ import annotations

import sys

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
    plan.check_specs([ModelSpec("t8"), ModelSpec("t8", weights="random:3")])
    with pytest.raises(ValueError, match="no such checkpoint file"):
        plan.check_specs([ModelSpec("t8", weights=str(tmp_path / "missing.pth"))])
    with pytest.raises(ValueError, match="timm has no model named 'no_such_net'"):
        plan.check_specs([ModelSpec("timm:no_such_net")])


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
