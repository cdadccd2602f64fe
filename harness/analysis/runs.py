"""Runs as plain data for the views: the latest run of each model spec per target (`harness report`, the model
page), the runs a sweep or an import stored, and one run in full (the run page), each with its speedup against a
baseline target timing the same model spec the same way."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..protocol import TIMED_STATUSES
from ..spec import model_sort_key
from ..store import SAME_SPEC_KEY, SERIES_KEY, Host, Run, key_of, latest_runs

# A run as `harness report` lists it (the fields of its JSON); a latency shows only for a timed status.
FIELDS = ["run", "host", "model", "res", "batch", "form", "target", "precision", "threads", "status", "imported",
          "origin", "median_ms", "mean_ms", "p90_ms", "ci95_low_ms", "ci95_high_ms", "cv", "n", "speedup", "noisy",
          "other_cpu", "steal", "load_ms", "model_mb", "artifact_mb", "agreement_top1", "agreement_cosine",
          "accuracy_top1", "compile_ms", "compile_warm_ms", "compile_cold_reused", "graph_breaks", "recompiles",
          "error"]


@dataclass(frozen=True)
class RunSummary:
    fields: dict  # FIELDS
    label: str  # 'host target precision', as charts name it
    series: dict  # the SERIES_KEY of its history page
    parity_max_abs: float | None


def _summary(run: Run, base: dict[tuple, float]) -> RunSummary:
    ok = run.status in TIMED_STATUSES  # an inaccurate run was timed like any other: no claim uses it
    latency = run.latency_ms if ok else None
    reference = base.get(key_of(run, SAME_SPEC_KEY))
    timed = (lambda value: value if ok else None)  # noqa: E731
    values = (run.id, run.host.hostname, run.model, run.resolution, run.batch, run.form, run.target, run.recipe,
              run.threads, run.status, bool(run.imported), run.origin, timed(run.median_ms), timed(run.mean_ms),
              timed(run.p90_ms), timed(run.median_ci_low_ms), timed(run.median_ci_high_ms), timed(run.cv),
              timed(run.iterations), reference / latency if latency and reference else None, bool(run.noisy),
              run.other_cpu, run.steal, run.load_ms, run.model_peak_mb,
              run.artifact_bytes / 1e6 if run.artifact_bytes is not None else None, run.agreement_top1,
              run.agreement_cosine, run.accuracy_top1, run.compile_ms, run.compile_warm_ms, bool(run.compile_cold_reused),
              run.graph_breaks,
              run.recompiles, run.error)
    return RunSummary(dict(zip(FIELDS, values)), f"{run.host.hostname} {run.labelled_precise_target}",
                      dict(zip(SERIES_KEY, key_of(run, SERIES_KEY))), run.parity_max_abs)


def _listing(session: Session, runs: list[Run], baseline: str) -> list[RunSummary]:
    base = {key_of(r, SAME_SPEC_KEY): r.latency_ms for r in latest_runs(session, Run.target == baseline)
            if r.latency_ms}
    ordered = sorted(runs, key=lambda r: (model_sort_key(r.model), r.resolution, r.batch, r.form, r.target, r.id))
    return [_summary(r, base) for r in ordered]


def latest(engine, baseline: str, models: list[str] | None = None) -> list[RunSummary]:
    """The latest run (any status) of each model spec on each target."""
    with Session(engine) as session:
        runs = latest_runs(session, *([Run.model.in_(models)] if models else []), valid_only=False)
        return _listing(session, runs, baseline)


def of_spec(engine, model: str, resolution: int, form: str, batch: int, baseline: str) -> list[RunSummary]:
    """The latest run (any status) of one model spec on each target and host: the model page."""
    with Session(engine) as session:
        runs = latest_runs(session, Run.model == model, Run.resolution == resolution, Run.form == form,
                           Run.batch == batch, valid_only=False)
        return _listing(session, runs, baseline)


def by_id(engine, run_ids: list[int], baseline: str) -> list[RunSummary]:
    """The runs a sweep or an import stored."""
    with Session(engine) as session:
        return _listing(session, list(session.scalars(select(Run).where(Run.id.in_(run_ids)))), baseline)


def resolutions(engine, model: str) -> list[int]:
    """Every resolution `model` has a run at."""
    with Session(engine) as session:
        return sorted(set(session.scalars(select(Run.resolution).where(Run.model == model).distinct())))


@dataclass
class RunDetail:
    """One run in full: every stored column (and what the views derive from them), its host, its largest ops."""
    run: dict
    host: dict
    ops: list[dict] = field(default_factory=list)

    @property
    def compute_units(self) -> dict:
        return (self.run.get("environment") or {}).get("compute_units") or {}

    @property
    def farm_urls(self) -> dict:
        return (self.run.get("environment") or {}).get("aihub_urls") or {}


DERIVED = ("origin", "labelled_target", "precise_target", "labelled_precise_target", "latency_ms")
OPS_SHOWN = 40


def detail(engine, run_id: int) -> RunDetail | None:
    with Session(engine) as session:
        found = session.get(Run, run_id)
        if found is None:
            return None
        run = {c.key: getattr(found, c.key) for c in Run.__table__.columns}
        run.update({name: getattr(found, name) for name in DERIVED})
        run["series"] = dict(zip(SERIES_KEY, key_of(found, SERIES_KEY)))
        host = {c.key: getattr(found.host, c.key) for c in Host.__table__.columns}
        ops = [{"op_name": o.op_name, "op_type": o.op_type, "op_class": o.op_class, "compute_unit": o.compute_unit,
                "calls": o.calls, "total_ms": o.total_ms}
               for o in sorted(found.op_profiles, key=lambda o: -o.total_ms)[:OPS_SHOWN]]
    return RunDetail(run, host, ops)
