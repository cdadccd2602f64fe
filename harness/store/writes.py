"""Writing results: each run in one transaction together with its samples, op profile and FLOPs,
so an interrupted sweep keeps every finished run and never leaves half of one."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..protocol import RunResult
from ..spec import ModelSpec, Target
from .schema import (DelegationCoverage, Host, HostPeak, ModelFlops, OpProfile, PrecisionCoverage, Predictor, Run,
                     Sample, Sweep)


def now() -> datetime:
    return datetime.now(timezone.utc)


def start_sweep(engine: Engine, command: str) -> int:
    with Session(engine) as session, session.begin():
        sweep = Sweep(command=command, started_at=now())
        session.add(sweep)
        session.flush()
        return sweep.id


def finish_sweep(engine: Engine, sweep_id: int, status: str) -> None:
    with Session(engine) as session, session.begin():
        sweep = session.get(Sweep, sweep_id)
        sweep.finished_at, sweep.status = now(), status


def find_or_add_host(session: Session, facts: dict) -> int:
    facts = {"isa": "", **facts}  # a host whose ISA is not known (imported logs, phones) has none
    found = session.scalar(select(Host.id).filter_by(**facts))
    if found is not None:
        return found
    try:
        with session.begin_nested():  # another sweep may be inserting the same host right now
            host = Host(**facts)
            session.add(host)
        return host.id
    except IntegrityError:
        return session.scalar(select(Host.id).filter_by(**facts))


def _environment(result: RunResult) -> dict | None:
    """The run's facts, through JSON once, so what is stored is exactly what a reader gets back."""
    return json.loads(json.dumps(result.environment, default=str)) if result.environment else None


def _timestamp(unix: float | None) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc) if unix else now()


def save_run(engine: Engine, result: RunResult, *, spec: ModelSpec, target: Target, threads: int, precision: str,
             host: dict, sweep_id: int | None = None, layer: str | None = None, layer_count: int | None = None,
             keep_float: str = "") -> int:
    """Write one run and everything measured with it in a single transaction; returns the run id. keep_float: a
    mixed int8 recipe's op classes kept in float (harness.measure.recipe)."""
    summary = {k: v for k, v in asdict(result.summary).items() if k != "count"} if result.summary else {}
    samples = [("first", 0, result.first_ns)] if result.first_ns is not None else []
    samples += [("warmup", i, ns) for i, ns in enumerate(result.warmup_ns)]
    samples += [("timed", i, ns) for i, ns in enumerate(result.samples_ns)]
    with Session(engine) as session, session.begin():
        run = Run(
            sweep_id=sweep_id, host_id=find_or_add_host(session, host), **spec.as_dict(),
            target=target.name, backend=target.backend, device=target.device, threads=threads, precision=precision,
            keep_float=keep_float, status=result.status, error=result.error, log=result.log, imported=result.imported,
            layer=layer, layer_count=layer_count,
            parity_max_abs=result.parity_max_abs, parity_rel=result.parity_rel,
            first_ms=result.first_ns / 1e6 if result.first_ns is not None else None,
            warmup_iterations=len(result.warmup_ns) or None,
            iterations=len(result.samples_ns) or (result.summary.count if result.summary else None),
            **summary,
            **_interference(result.interference), noisy=result.noisy, **_footprint(result.footprint),
            **_agreement(result.agreement), calibration=result.calibration, **_compilation(result.compilation),
            artifact_path=result.artifact_path, artifact_key=result.artifact_key,
            environment=_environment(result),
            started_at=_timestamp(result.started_at), finished_at=_timestamp(result.finished_at),
        )
        run.samples = [Sample(phase=p, iteration=i, latency_ns=int(ns)) for p, i, ns in samples]
        run.op_profiles = [OpProfile(**asdict(row)) for row in result.op_profile]
        if result.class_flops:
            save_model_flops(session, spec, result.class_flops)
        if result.coverage:
            save_coverage(session, spec, target.backend, result.coverage)
        if result.precision_coverage:
            save_precision_coverage(session, spec, target.backend, precision, result.calibration,
                                    result.precision_coverage, keep_float)
        session.add(run)
        session.flush()
        return run.id


@dataclass(frozen=True)
class PublishedFigure:
    """One latency from a paper or model zoo: a run with no samples, keyed by a UUID derived from its source, so
    storing it twice adds nothing and two databases that stored it merge cleanly."""
    uuid: str
    host: dict
    spec: ModelSpec
    target: Target
    precision: str
    citation: str
    median_ms: float | None  # what the source gives: a median, or
    mean_ms: float | None = None  # a mean (a throughput's time per image)
    environment: dict | None = None  # how the source timed it (versions, layout, throughput, the form's evidence)


def save_published(engine: Engine, figures: list[PublishedFigure]) -> tuple[int, int]:
    """Store each figure as a published run, all in one transaction; (added, already present)."""
    added = present = 0
    with Session(engine) as session, session.begin():
        known = set(session.scalars(select(Run.uuid).where(Run.published.is_(True))))
        for f in figures:
            if f.uuid in known:
                present += 1
                continue
            session.add(Run(uuid=f.uuid, host_id=find_or_add_host(session, f.host), **f.spec.as_dict(),
                            target=f.target.name, backend=f.target.backend, device=f.target.device,
                            precision=f.precision, threads=0, status="ok", published=True, citation=f.citation,
                            median_ms=f.median_ms, mean_ms=f.mean_ms, environment=f.environment,
                            started_at=now(), finished_at=now()))
            known.add(f.uuid)
            added += 1
    return added, present


def _footprint(found) -> dict:
    return asdict(found) if found is not None else {}


def _agreement(found) -> dict:
    if found is None:
        return {}
    return {"agreement_images": found.images, "agreement_top1": found.top1, "agreement_cosine": found.cosine,
            "agreement_cosine_min": found.cosine_min, "held_out": found.held_out,
            "accuracy_top1": found.accuracy_top1, "eval_images": found.eval_images}


def _compilation(found) -> dict:
    if found is None:
        return {}
    return {"compile_mode": found.mode, "compile_ms": found.compile_ms, "compile_warm_ms": found.compile_warm_ms,
            "graphs": found.graphs, "graph_breaks": found.graph_breaks, "break_reasons": list(found.break_reasons),
            "recompiles": found.recompiles, "compile_cold_reused": found.cold_reused}


def _interference(found) -> dict:
    if found is None:
        return {}
    return {"other_cpu": found.other_cpu, "steal": found.steal, "load_before": found.load_before,
            "load_after": found.load_after, "throttle_events": found.throttle_events, "cpu_mhz": found.mhz}


def save_model_flops(session: Session, spec: ModelSpec, flops: dict[str, int]) -> None:
    """Record (or refresh) a model spec's FLOPs per op class; identical for every run of it."""
    for op_class, value in flops.items():
        session.merge(ModelFlops(model=spec.model, resolution=spec.resolution, batch=spec.batch, form=spec.form,
                                 op_class=op_class, flops=int(value)))


def save_coverage(session: Session, spec: ModelSpec, backend: str, rows) -> None:
    """Record (or refresh) which ops `backend`'s delegate took for a model spec (protocol.CoverageRow)."""
    _replace_coverage(session, DelegationCoverage, rows, _coverage_key(spec, backend))


def save_precision_coverage(session: Session, spec: ModelSpec, backend: str, precision: str, calibration: str | None,
                            rows, keep_float: str = "") -> None:
    """Record (or refresh) which ops of `backend`'s `precision` artifact of a spec (made with the mixed recipe
    `keep_float`, if any) compute in int8 (protocol.PrecisionRow)."""
    _replace_coverage(session, PrecisionCoverage, rows,
                      {**_coverage_key(spec, backend), "precision": precision, "keep_float": keep_float},
                      calibration=calibration)


def _coverage_key(spec: ModelSpec, backend: str) -> dict:
    return dict(model=spec.model, resolution=spec.resolution, batch=spec.batch, form=spec.form, backend=backend)


def _replace_coverage(session: Session, table, rows, key: dict, **extra) -> None:
    """One artifact's coverage rows in `table` (schema.CoverageKey), replacing what an earlier export stored."""
    session.query(table).filter_by(**key).delete()
    for row in rows:
        session.add(table(**key, **extra, **{**asdict(row), "kernel": row.kernel or 0}))


def save_peak(engine: Engine, *, host: dict, target: str, threads: int, gflops: float, gemm_size: int) -> int:
    with Session(engine) as session, session.begin():
        peak = HostPeak(host_id=find_or_add_host(session, host), target=target, threads=threads, gflops=gflops,
                        gemm_size=gemm_size, measured_at=now())
        session.add(peak)
        session.flush()
        return peak.id


def save_predictor(engine: Engine, *, host: dict, target: str, threads: int, precision: str, method: str,
                   overhead_ms: float, costs: dict, run_ids: list[int], fusion: dict | None = None) -> int:
    """Store a fitted predictor (harness.predict.fit's cost models as plain data) with the uuids of the runs it
    was fitted on, in one transaction."""
    with Session(engine) as session, session.begin():
        uuids = list(session.scalars(select(Run.uuid).where(Run.id.in_(run_ids)).order_by(Run.id))) if run_ids else []
        row = Predictor(host_id=find_or_add_host(session, host), target=target, threads=threads, precision=precision,
                        method=method, fitted_at=now(), overhead_ms=overhead_ms, costs=costs, training_runs=uuids,
                        fusion=fusion or {})
        session.add(row)
        session.flush()
        return row.id


def set_process_spread(engine: Engine, run_ids: list[int], value: float) -> None:
    """Record, on each run of one job, how far its sweep's fresh processes landed apart."""
    with Session(engine) as session, session.begin():
        for run in session.scalars(select(Run).where(Run.id.in_(run_ids))):
            run.process_spread = value
