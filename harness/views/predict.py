"""`harness predict`: a prediction (never shown as a measurement: its cells say 'predicted'), its kernels, and the
predictors stored (`harness predict fit`, `harness predict --list`)."""
from __future__ import annotations

from .table import Cell, Column, Table, table

PREDICTED = "predicted"  # the mark on every predicted value


def prediction_table(found) -> Table:
    """One model spec predicted on one target (analysis.predict.PredictedModel), the measured value beside it."""
    p, f = found.prediction, found.predictor
    rows = [{"model": found.spec.model, "resolution": found.spec.resolution, "target": f.target, "threads": f.threads,
             "predicted_ms": Cell(p.ms, marks=(PREDICTED,)), "interval_ms": found.interval_ms,
             "measured_ms": found.measured_ms, "measured_run": found.measured_run, "error": found.error,
             "predictor": f.id}]
    interval = ("the profiled models' leave-one-out error at the 90th percentile (none from a single profile)"
                if f.from_profiles else "the calibration's whole models' leave-one-out error at the 90th percentile"
                if f.whole_models else "each kernel's leave-one-out error at the 90th percentile of its kind")
    return table("prediction", f"{found.spec.model} at {found.spec.resolution}px on {f.target}: predicted from "
                 f"{f.source} (predictor {f.id}, host {f.host}, fitted {f.fitted_at}, {f.training_runs} runs)",
                 [Column("model", label=True), Column("resolution", "res", "count"), Column("target"),
                  Column("threads", kind="count"), Column("predicted_ms", "predicted ms", "ms"),
                  Column("interval_ms", "interval (90%)", "range"), Column("measured_ms", "measured ms", "ms"),
                  Column("measured_run", "run", "count"), Column("error", "predicted / measured - 1", "signed_share"),
                  Column("predictor", kind="count")], rows,
                 notes=["A prediction, not a measurement: it is never stored as a run nor used by claims, compare or "
                        f"findings. Interval: {interval}."])


def kernels_table(found) -> Table:
    total = found.prediction.ms
    rows = [{"kernel": part.signature, "kind": part.kind, "count": part.count, "ms": part.ms,
             "share": part.ms / total if total else None} for part in found.prediction.parts]
    if found.predictor.from_profiles:  # rates scaled to whole latencies: no separate overhead
        return table("prediction_kernels", "where the predicted time goes: each op class's rate times the model's "
                     "own FLOPs (elements written, for the memory-bound ops)",
                     [Column("kernel", "op class", label=True), Column("ms", "predicted ms", "ms", 3),
                      Column("share", kind="share")], rows)
    rows.append({"kernel": "per-call overhead (empty-model probe)", "kind": "overhead", "count": 1,
                 "ms": found.prediction.overhead_ms, "share": found.prediction.overhead_ms / total if total else None})
    return table("prediction_kernels", "where the predicted time goes (each kernel's calls, net of the overhead "
                 "its own timing paid)", [Column("kernel", label=True), Column("kind"), Column("count", kind="count"),
                                          Column("ms", "predicted ms", "ms", 3), Column("share", kind="share")], rows)


def predictors_table(summaries) -> Table:
    rows = []
    for s in summaries:
        for i, kind in enumerate(s.kinds):
            rows.append({"predictor": s.id if i == 0 else None, "target": s.target if i == 0 else None,
                         "threads": s.threads if i == 0 else None, "fitted_at": s.fitted_at if i == 0 else None,
                         "overhead_ms": s.overhead_ms if i == 0 else None, "kind": kind.kind, "kernels": kind.samples,
                         "error_p50": kind.error_p50, "error_p90": kind.error_p90,
                         "fused": s.fuses if i == 0 else None, "source": s.source if i == 0 else None})
    return table("predictors", "latency predictors: per kernel kind (op class, for one fitted from profiles), how "
                 "many kernels (profiled models) it was fitted on and the leave-one-out |relative error| of the fit; "
                 "whole_model: the correction of the kernels' sum fitted on whole models (how many, and their error)",
                 [Column("predictor", kind="count"), Column("target"), Column("threads", kind="count"),
                  Column("fitted_at", "fitted"), Column("overhead_ms", "overhead ms", "ms", 4), Column("kind"),
                  Column("kernels", kind="count"), Column("error_p50", "|error| p50", "share"),
                  Column("error_p90", "|error| p90", "share"), Column("fused", "fuses (timed)"),
                  Column("source", "fitted from")], rows)

