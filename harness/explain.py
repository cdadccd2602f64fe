"""Per-op-class breakdown of one model's latest profiled runs, side by side per target."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .opclass import CLASSES
from .storage import Run
from .sweep import device_matches


def breakdown(engine, model: str, resolution: int, form: str, device: str) -> tuple[list[dict], list[dict]]:
    """([{target, run_id, median_ms}], [{op_class, cells: [{ms, share} | None per target]}])."""
    with Session(engine) as session:
        latest: dict[str, Run] = {}
        query = select(Run).where(Run.model == model, Run.resolution == resolution, Run.form == form,
                                  Run.status == "ok").order_by(Run.id)
        for run in session.scalars(query):
            if device_matches(device, run.device) and run.op_profiles:
                latest[run.target] = run
        targets, per_target = [], []
        for target, run in sorted(latest.items()):
            totals: dict[str, float] = {}
            for op in run.op_profiles:
                totals[op.op_class] = totals.get(op.op_class, 0.0) + op.total_ms
            targets.append({"target": target, "run_id": run.id,
                            "median_ms": run.latency_ms})
            per_target.append(totals)
    rows = []
    for cls in sorted(CLASSES, key=lambda c: -sum(t.get(c, 0.0) for t in per_target)):
        if not any(cls in t for t in per_target):
            continue
        cells = []
        for totals in per_target:
            whole = sum(totals.values())
            cells.append({"ms": totals[cls], "share": totals[cls] / whole} if cls in totals and whole else None)
        rows.append({"op_class": cls, "cells": cells})
    return targets, rows
