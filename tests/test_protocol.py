"""The worker protocol: jobs and results survive JSON exactly, bad documents are refused with a
reason, and every field of a result reaches the database."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest
from helpers import HOST
from sqlalchemy.orm import Session

from harness import store
from harness.protocol import (PROTOCOL_VERSION, Agreement, Compilation, CoverageRow, Footprint, Interference, Job, OpRow, PeakJob,
                              PeakResult, PrecisionRow, ProtocolError, RunResult, TimingPolicy, job_from_json,
                              job_to_json)
from harness.spec import ModelSpec, Target
from harness.stats import Summary

JOB = Job(ModelSpec("sa12", 128, 2, "train", "random:7"), Target("litert", "android:R58", "delegate=gpu"), 4,
          TimingPolicy(3, 0.5, 20, 1.5, 60.0), "/cache", "fp16", 10)


def full_result() -> RunResult:
    """A result with every field set to a value distinct from its default."""
    summary = Summary(**{f.name: (7 if f.name == "count" else 1.0 + i) for i, f in enumerate(fields(Summary))})
    return RunResult(status="invalid", error="output differs", log="Traceback ...", imported=True, first_ns=9_000_000,
                     warmup_ns=[3_000_000, 2_000_000], samples_ns=[1_000_000 + i for i in range(7)], summary=summary,
                     parity_max_abs=0.5, parity_rel=0.25, artifact_path="/cache/x/model.tflite", artifact_key="x",
                     class_flops={"linear": 1000, "conv_pointwise": 2000},
                     op_profile=[OpRow("conv1", "Conv", "conv_dense", 2, 0.75)],
                     coverage=[CoverageRow("xnnpack", "aten.convolution.default", "conv_dw_7x7", 7, True, 13, 0, 99, 0),
                               CoverageRow("xnnpack", "aten.where.self", "other", None, False, 0, 2, 0, 0)],
                     interference=Interference(0.75, 0.02, 1.5, 2.25, 3, 2400.0), noisy=True,
                     footprint=Footprint(**{f.name: (True if f.type == "bool" else 3 + i if "bytes" in f.name
                                                     else 0.5 + i) for i, f in enumerate(fields(Footprint))}),
                     precision_coverage=[PrecisionRow("Conv", "conv_dw_7x7", 7, True, 13, 0, 99, 0),
                                         PrecisionRow("Erf", "activation", None, False, 0, 17, 0, 0)],
                     agreement=Agreement(8, 0.875, 0.98, 0.92, "sha256:held", 0.75, 50), calibration="sha256:cal",
                     compilation=Compilation("reduce-overhead", 31000.5, 3, 2, ["Call to `print`", "data-dependent"],
                                             1, 1800.25),
                     environment={"threads": 4, "versions": {"torch": "2.14.1"}}, started_at=1_700_000_000.0,
                     finished_at=1_700_000_010.0)


def test_jobs_survive_json():
    assert job_from_json(job_to_json(JOB)) == JOB
    peak = PeakJob(Target("openvino", "cpu"), 2, 256, TimingPolicy(), "/cache")
    assert job_from_json(job_to_json(peak)) == peak
    assert JOB.tolerance == 2e-2 and JOB.describe() == "sa12 train on litert/android:R58[delegate=gpu]"


def test_results_survive_json():
    result = full_result()
    assert RunResult.from_json(result.to_json()) == result
    peak = PeakResult(status="ok", gflops=123.5, samples=20)
    assert PeakResult.from_json(peak.to_json()) == peak


def _job_dict(**changes) -> dict:
    data = json.loads(job_to_json(JOB))
    data.update(changes)
    return data


@pytest.mark.parametrize("data, message", [
    (_job_dict(version=PROTOCOL_VERSION + 1), f"speaks protocol version {PROTOCOL_VERSION + 1}"),
    (_job_dict(kind="train"), "unknown kind 'train'"),
    (_job_dict(colour="red"), "job: unknown field(s) colour"),
    ({k: v for k, v in _job_dict().items() if k != "threads"}, "job: missing field(s) threads"),
    (_job_dict(spec={**_job_dict()["spec"], "depth": 3}), "job.spec: unknown field(s) depth"),
    (_job_dict(spec={**_job_dict()["spec"], "model": "t9"}), "unknown model 't9'"),
    (_job_dict(policy={"warmup_iterations": 1, "cooldown_seconds": 2}), "job.policy: unknown field(s) cooldown"),
    (_job_dict(precision="int4"), "unknown precision 'int4'"),
])
def test_bad_jobs_are_refused_with_the_reason(data, message):
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        job_from_json(json.dumps(data))


def test_bad_results_are_refused_with_the_reason():
    good = json.loads(full_result().to_json())
    with pytest.raises(ProtocolError, match="not JSON"):
        RunResult.from_json("{half")
    with pytest.raises(ProtocolError, match="unknown field\\(s\\) stderr"):
        RunResult.from_json(json.dumps({**good, "stderr": "..."}))  # the field the old runner wrote and nobody read
    with pytest.raises(ProtocolError, match="protocol version None"):
        RunResult.from_json(json.dumps({k: v for k, v in good.items() if k != "version"}))
    with pytest.raises(ProtocolError, match="result.summary: unknown field\\(s\\) p50_ms"):
        RunResult.from_json(json.dumps({**good, "summary": {"p50_ms": 1.0}}))
    with pytest.raises(ProtocolError, match="result.op_profile\\[\\]: missing field\\(s\\) calls"):
        RunResult.from_json(json.dumps({**good, "op_profile": [{"op_name": "a", "op_type": "b", "op_class": "c",
                                                                "total_ms": 1.0}]}))
    with pytest.raises(ProtocolError, match="result: unknown status 'done'"):
        RunResult.from_json(json.dumps({**good, "status": "done"}))
    with pytest.raises(ProtocolError, match="unknown status 'done'"):
        RunResult(status="done")


# How each field of a RunResult is read back from the database. A field added to RunResult
# without a way to store it fails test_every_result_field_is_stored.
STORED_AS = {
    "status": lambda run: run.status,
    "error": lambda run: run.error,
    "log": lambda run: run.log,
    "imported": lambda run: run.imported,
    "first_ns": lambda run: round(run.first_ms * 1e6),
    "warmup_ns": lambda run: [s.latency_ns for s in run.samples if s.phase == "warmup"],
    "samples_ns": lambda run: [s.latency_ns for s in run.samples if s.phase == "timed"],
    "summary": lambda run: Summary(count=run.iterations, **{f.name: getattr(run, f.name)
                                                            for f in fields(Summary) if f.name != "count"}),
    "parity_max_abs": lambda run: run.parity_max_abs,
    "parity_rel": lambda run: run.parity_rel,
    "artifact_path": lambda run: run.artifact_path,
    "artifact_key": lambda run: run.artifact_key,
    "op_profile": lambda run: [OpRow(o.op_name, o.op_type, o.op_class, o.calls, o.total_ms) for o in run.op_profiles],
    "environment": lambda run: run.environment,
    "interference": lambda run: Interference(run.other_cpu, run.steal, run.load_before, run.load_after,
                                             run.throttle_events, run.cpu_mhz),
    "noisy": lambda run: run.noisy,
    "footprint": lambda run: Footprint(**{f.name: getattr(run, f.name) for f in fields(Footprint)}),
    "coverage": lambda run: [CoverageRow(c.partitioner, c.op_type, c.op_class, c.kernel or None, c.depthwise,
                                         c.delegated_nodes, c.portable_nodes, c.delegated_flops, c.portable_flops)
                             for c in sorted(coverage_of(run), key=lambda c: (-c.delegated_nodes, c.op_type))],
    "precision_coverage": lambda run: [
        PrecisionRow(c.op_type, c.op_class, c.kernel or None, c.depthwise, c.low_nodes, c.float_nodes, c.low_flops,
                     c.float_flops) for c in sorted(precision_coverage_of(run), key=lambda c: (-c.low_nodes, c.op_type))],
    "agreement": lambda run: Agreement(run.agreement_images, run.agreement_top1, run.agreement_cosine,
                                       run.agreement_cosine_min, run.held_out, run.accuracy_top1, run.eval_images),
    "calibration": lambda run: run.calibration,
    "compilation": lambda run: Compilation(run.compile_mode, run.compile_ms, run.graphs, run.graph_breaks,
                                           run.break_reasons, run.recompiles, run.compile_warm_ms),
    "started_at": lambda run: run.started_at.timestamp(),
    "finished_at": lambda run: run.finished_at.timestamp(),
    "version": lambda run: PROTOCOL_VERSION,  # the wire format's, not the run's
}


def coverage_of(run):
    """The delegation coverage stored for the run's model spec and backend."""
    from sqlalchemy.orm import object_session

    return object_session(run).query(store.DelegationCoverage).filter_by(
        model=run.model, resolution=run.resolution, batch=run.batch, form=run.form, backend=run.backend).all()


def precision_coverage_of(run):
    """The int8 coverage stored for the run's model spec, backend and precision."""
    from sqlalchemy.orm import object_session

    return object_session(run).query(store.PrecisionCoverage).filter_by(
        model=run.model, resolution=run.resolution, batch=run.batch, form=run.form, backend=run.backend,
        precision=run.precision).all()


def test_every_result_field_is_stored(engine):
    result = full_result()
    run_id = store.save_run(engine, result, spec=JOB.spec, target=JOB.target, threads=4, precision="fp16", host=HOST)
    with Session(engine) as session:
        run = session.get(store.Run, run_id)
        flops = {f.op_class: f.flops for f in session.query(store.ModelFlops)}
        for f in fields(RunResult):
            if f.name == "class_flops":
                assert flops == result.class_flops
                continue
            assert f.name in STORED_AS, f"RunResult.{f.name} is never stored (add it to the schema and to STORED_AS)"
            assert STORED_AS[f.name](run) == getattr(result, f.name), f.name
