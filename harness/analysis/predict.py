"""Predictions as plain data for the views: a stored predictor (store.Predictor) applied to a model spec, its
per-kernel breakdown, and the measured latency beside it where a valid run of the same spec exists. A predicted
value is never a run: it is computed here when asked and marked as a prediction wherever it is shown."""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..predict import rates
from ..predict.fit import WHOLE, KindCost, Prediction, predict
from ..spec import ModelSpec
from ..store import Host, OpProfile, Predictor, Run, latest_runs
from ..store.schema import HOST_IDENTITY
from .advise import class_ms
from .compare import METRICS, Comparison


@dataclass(frozen=True)
class KindFit:
    kind: str
    samples: int
    error_p50: float | None  # leave-one-out |relative error| of its kernels; None where there are none
    error_p90: float | None


@dataclass(frozen=True)
class PredictorSummary:
    id: int
    host: str
    target: str
    threads: int
    precision: str
    method: str
    fitted_at: str
    overhead_ms: float | None  # the empty-model probe; None for rates from profiles (scaled to whole latencies)
    training_runs: int
    kinds: list[KindFit]
    fusion: dict  # composition name -> {"fused", "saved_ms", "saved_share"} (harness.predict.fusion), timed at fit

    @property
    def from_profiles(self) -> bool:
        """Fitted from whole models' op profiles (harness.predict.rates), not from kernels timed alone."""
        return self.method == rates.METHOD

    @property
    def whole_models(self) -> int:
        """How many whole models the kernel fit was calibrated on (harness.predict.fit.WHOLE); 0: none."""
        return next((k.samples for k in self.kinds if k.kind == WHOLE), 0)

    @property
    def source(self) -> str:
        if self.from_profiles:
            return f"op-class rates from {self.training_runs} profiled model(s)"
        return "kernels timed alone" + (f", calibrated on {self.whole_models} whole models" if self.whole_models
                                        else "")

    @property
    def fuses(self) -> str:
        """The compositions the fit found fused, named; "none of N" where it tested N and found none; "" untested."""
        if not self.fusion:
            return ""
        fused = [name for name, found in self.fusion.items() if found.get("fused")]
        return ", ".join(fused) if fused else f"none of {len(self.fusion)}"


@dataclass(frozen=True)
class PredictedModel:
    spec: ModelSpec
    predictor: PredictorSummary
    prediction: Prediction
    measured_ms: float | None  # the latest valid run of the same spec on the same target, host and threads
    measured_run: int | None

    @property
    def error(self) -> float | None:
        return self.prediction.ms / self.measured_ms - 1 if self.measured_ms else None

    @property
    def interval_ms(self) -> tuple[float, float] | None:
        """(low, high), or None where the predictor has no spread to give one from (a single profile)."""
        low, high = self.prediction.low_ms, self.prediction.high_ms
        return None if math.isnan(low) or math.isnan(high) else (low, high)


def costs_of(row: Predictor) -> dict[str, KindCost]:
    return {kind: KindCost(list(c["coef"]), int(c["samples"]), list(c.get("cv_errors", [])))
            for kind, c in row.costs.items()}


def _known(value: float) -> float | None:
    """None for NaN (no leave-one-out errors: a fit on a single profile), which every view shows as '—'."""
    return None if math.isnan(value) else value


def summary(row: Predictor) -> PredictorSummary:
    kinds = [KindFit(kind, cost.samples, _known(cost.error_quantile(0.5)), _known(cost.error_quantile(0.9)))
             for kind, cost in costs_of(row).items()]
    return PredictorSummary(row.id, row.host.hostname, row.target, row.threads, row.precision, row.method,
                            row.fitted_at.isoformat(timespec="seconds"),
                            None if row.method == rates.METHOD else row.overhead_ms, len(row.training_runs),
                            kinds, dict(row.fusion or {}))


@dataclass(frozen=True)
class ProfiledRun:
    """A whole-model run with an op profile, as a profile-rates fit reads it."""
    spec: ModelSpec
    run_id: int
    host: dict  # its host's identity (store.schema.HOST_IDENTITY): a device's, for an imported profile
    threads: int
    latency_ms: float
    class_ms: dict[str, float]  # op class -> milliseconds per inference in its profile


def profiled_runs(engine, target: str, hostname: str | None = None, precision: str = "fp32",
                  threads: int | None = None) -> list[ProfiledRun]:
    """The newest valid run per model spec on `target` that holds an op profile (imported from a device or timed
    here), on the host named `hostname`, else on the host of the newest such run; with `threads`, else with as many
    as the newest such run (rates at one thread count are not rates at another)."""
    with Session(engine) as session:
        runs = [r for r in latest_runs(session, Run.target == target, Run.precision == precision,
                                       Run.keep_float == "", Run.published.is_(False),
                                       Run.id.in_(select(OpProfile.run_id)))
                if r.latency_ms and (hostname is None or r.host.hostname == hostname)]
        if not runs:
            return []
        host_id = runs[-1].host_id
        runs = [r for r in runs if r.host_id == host_id]
        threads = threads if threads is not None else runs[-1].threads
        runs = [r for r in runs if r.threads == threads]
        if not runs:
            return []
        host = {column: getattr(runs[-1].host, column) for column in HOST_IDENTITY}
        per_run = class_ms(engine, [r.id for r in runs])
        return [ProfiledRun(ModelSpec(r.model, r.resolution, r.batch, r.form), r.id, host, r.threads or 1,
                            r.latency_ms, per_run[r.id]) for r in runs]


def latest_predictor(session: Session, target: str, host: dict | None = None, threads: int | None = None,
                     precision: str = "fp32") -> Predictor | None:
    """The newest predictor of `target` (on the host with `host`'s hostname, with `threads`, where given)."""
    query = select(Predictor).join(Host).where(Predictor.target == target, Predictor.precision == precision)
    if host is not None:
        query = query.where(Host.hostname == host["hostname"])
    if threads is not None:
        query = query.where(Predictor.threads == threads)
    return session.scalars(query.order_by(Predictor.id.desc()).limit(1)).first()


def predictors(engine) -> list[PredictorSummary]:
    """Every stored predictor, newest first."""
    with Session(engine) as session:
        return [summary(row) for row in session.scalars(select(Predictor).order_by(Predictor.id.desc()))]


def predicted(engine, spec: ModelSpec, target: str, host: dict | None = None, threads: int | None = None
              ) -> PredictedModel:
    """`spec` on `target` as the newest matching predictor sees it; LookupError saying what to fit when there is
    none; ValueError for a spec it cannot split into kernels."""
    with Session(engine) as session:
        row = latest_predictor(session, target, host, threads)
        if row is None:
            raise LookupError(f"no predictor for {target}" + (f" with {threads} threads" if threads else "") +
                              f" on this host; `harness predict fit --backend {target.split('/')[0]}` fits one")
        found = summary(row)
        if found.from_profiles:
            prediction = rates.predict_rates(costs_of(row), rates.spec_features(spec))
        else:
            from ..predict.kernels import model_kernels  # a meta-device pass of the model: torch, only when asked

            prediction = predict(costs_of(row), model_kernels(spec), row.overhead_ms)
        measured = [r for r in latest_runs(session, Run.model == spec.model, Run.resolution == spec.resolution,
                                           Run.batch == spec.batch, Run.form == spec.form, Run.target == target,
                                           Run.threads == row.threads, Run.precision == row.precision,
                                           Run.keep_float == "", Run.host_id == row.host_id)
                    if r.latency_ms]
    run = measured[0] if measured else None
    return PredictedModel(spec, found, prediction, run.latency_ms if run else None, run.id if run else None)


def add_predictions(engine, found: Comparison, resolution_of) -> None:
    """Fill found.predicted: each FastViT model of the table that a column of this harness's fp32 runs lacks,
    as the newest predictor fitted for that column's host and target predicts it (`harness predict fit`).
    Published columns get none (their device was never fitted here); baselines get none (the predictor knows
    FastViT's blocks only); nor does a model the predictor cannot split (an op class no profile of it had)."""
    if found.metric is not METRICS["latency"]:
        return
    for column in found.columns:
        if column.origin == "published" or column.precision not in ("fp32", "n/a"):
            continue
        for model in found.models:
            spec = ModelSpec(model, resolution_of(model))
            if spec.is_baseline or (model, column) in found.values:
                continue
            try:
                found.predicted[(model, column)] = predicted(engine, spec, column.target,
                                                             {"hostname": column.host}).prediction.ms
            except LookupError:  # no predictor for this column: none of its models can be predicted
                break
            except ValueError:  # this model has a kind of kernel (or op class) the predictor has no cost for
                continue
