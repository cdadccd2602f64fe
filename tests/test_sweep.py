"""Planning a sweep: the specs are checked before anything starts, repeats go round-robin, every
job is stored as it ends and the sweep says whether it finished."""
from __future__ import annotations

import sys

import pytest
from sqlalchemy.orm import Session

from harness import store
from harness.measure import child, sweep
from harness.protocol import TimingPolicy
from harness.spec import ModelSpec, Target

TARGETS = [Target("torch", "cpu"), Target("onnxruntime", "cpu")]


def test_repeats_go_round_robin(tmp_path):
    specs = [ModelSpec("t8"), ModelSpec("s12")]
    jobs = sweep.plan_jobs(specs, TARGETS, threads=2, policy=TimingPolicy(), cache_dir=tmp_path, repeats=2)
    order = [(j.spec.model, j.target.backend) for j in jobs]
    assert order == [("t8", "torch"), ("t8", "onnxruntime"), ("s12", "torch"), ("s12", "onnxruntime")] * 2
    assert {j.cache_dir for j in jobs} == {str(tmp_path.resolve())}


def test_specs_are_checked_before_a_sweep(tmp_path):
    sweep.check_specs([ModelSpec("t8"), ModelSpec("t8", weights="random:3")])
    with pytest.raises(ValueError, match="no such checkpoint file"):
        sweep.check_specs([ModelSpec("t8", weights=str(tmp_path / "missing.pth"))])
    with pytest.raises(ValueError, match="timm has no model named 'no_such_net'"):
        sweep.check_specs([ModelSpec("timm:no_such_net")])


def test_a_sweep_stores_every_job_and_is_marked(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(child, "WORKER", [sys.executable, "-c", "import sys; sys.exit(1)"])
    jobs = sweep.plan_jobs([ModelSpec("t8")], TARGETS, threads=1, policy=TimingPolicy(), cache_dir=tmp_path)
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
