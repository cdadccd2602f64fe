"""Where one model's time goes: per-op-class milliseconds of its latest profiled runs, per target."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ..spec import device_matches
from ..opclass import CLASSES
from ..store import Run, latest_runs


@dataclass
class Breakdown:
    """targets: [{target, run_id, median_ms, noisy}]; rows: [{op_class, cells: [{ms, share} | None per target]}],
    largest op class first."""
    targets: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)


def breakdown(engine, model: str, resolution: int, form: str, device: str) -> Breakdown:
    """The latest valid run with an op profile of (model, resolution, form) on each target of `device`."""
    found = Breakdown()
    per_target: list[dict[str, float]] = []
    with Session(engine) as session:
        latest: dict[str, Run] = {}
        for run in latest_runs(session, Run.model == model, Run.resolution == resolution, Run.form == form,
                               Run.op_profiles.any()):
            if device_matches(device, run.device):
                latest[run.precise_target] = run  # several hosts or thread counts: the newest
        for target, run in sorted(latest.items()):
            totals: dict[str, float] = {}
            for op in run.op_profiles:
                totals[op.op_class] = totals.get(op.op_class, 0.0) + op.total_ms
            found.targets.append({"target": target, "run_id": run.id, "median_ms": run.latency_ms,
                                  "noisy": bool(run.noisy)})
            per_target.append(totals)
    for cls in sorted(CLASSES, key=lambda c: -sum(t.get(c, 0.0) for t in per_target)):
        if not any(cls in t for t in per_target):
            continue
        cells = []
        for totals in per_target:
            whole = sum(totals.values())
            cells.append({"ms": totals[cls], "share": totals[cls] / whole} if cls in totals and whole else None)
        found.rows.append({"op_class": cls, "cells": cells})
    return found


def kernels(engine, model: str, resolution: int, form: str, device: str,
            op_classes: tuple[str, ...]) -> dict[str, dict[str, list[tuple[str, int, float]]]]:
    """How each target runs each of `op_classes`: target -> op class -> [(the runtime's op type, ops per
    inference, ms per inference)], from the latest profiled valid runs (largest time first)."""
    found: dict[str, dict[str, dict[str, list]]] = {}
    with Session(engine) as session:
        for run in latest_runs(session, Run.model == model, Run.resolution == resolution, Run.form == form,
                               Run.op_profiles.any()):
            if not device_matches(device, run.device):
                continue
            per_class: dict[str, dict[str, list]] = {}
            for op in run.op_profiles:
                if op.op_class in op_classes:
                    cell = per_class.setdefault(op.op_class, {}).setdefault(op.op_type or "?", [0, 0.0])
                    cell[0] += op.calls
                    cell[1] += op.total_ms
            found[run.precise_target] = per_class  # several hosts or thread counts: the newest
    return {target: {cls: sorted(((t, n, ms) for t, (n, ms) in types.items()), key=lambda x: -x[2])
                     for cls, types in per_class.items()} for target, per_class in sorted(found.items())}
