"""What a findings file is about: the host with the most runs of this harness, what it is, what ran there (the
commands, the versions), its latest fp32 latencies per model and target, and its roofline per op class."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..spec import model_sort_key
from ..store import Host, HostPeak, Run, Sweep, latest_repeats


@dataclass
class HostRecord:
    hostname: str
    cpu_model: str
    logical_cores: int | None
    os: str
    isa: str | None
    threads: int | None  # of its latest run
    runs: int
    versions: dict[str, str] = field(default_factory=dict)  # every runtime's version its runs recorded
    commands: list[str] = field(default_factory=list)  # the sweeps that made its runs, oldest first
    has_peaks: bool = False  # `harness peak` ran there
    # (model, form, target) -> the medians of the latest sweep's processes (fp32, batch 1, not on a GPU)
    latest: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def median(self, model: str, target: str, form: str = "reparam") -> float | None:
        """The median of the latest sweep's process medians of (model, form) on target."""
        found = self.latest.get((model, form, target))
        return float(np.median(found)) if found else None

    @property
    def models(self) -> list[str]:
        return sorted({m for m, _, _ in self.latest}, key=model_sort_key)

    @property
    def targets(self) -> list[str]:
        return sorted({t for _, _, t in self.latest})


def busiest_host(engine, resolution_of) -> HostRecord:
    """The host with the most runs timed by this harness; ValueError where there are none."""
    with Session(engine) as session:
        runs = session.scalars(select(Run).where(Run.imported.is_(False), Run.published.is_(False))
                               .order_by(Run.id)).all()
        if not runs:
            raise ValueError("the database holds no runs of this harness yet")
        counts = Counter(r.host_id for r in runs)
        host = session.get(Host, max(counts, key=counts.get))
        runs = [r for r in runs if r.host_id == host.id]
        found = HostRecord(host.hostname, host.cpu_model, host.logical_cores, host.os, host.isa,
                           (runs[-1].environment or {}).get("threads"), len(runs))
        for r in runs:  # each run records its own runtime's versions
            found.versions.update((r.environment or {}).get("versions") or {})
        found.commands = list(session.scalars(select(Sweep.command).where(
            Sweep.id.in_({r.sweep_id for r in runs if r.sweep_id})).order_by(Sweep.id)))
        found.has_peaks = session.scalar(select(HostPeak.id).where(HostPeak.host_id == host.id).limit(1)) is not None
        for group in latest_repeats(session, Run.host_id == host.id, Run.batch == 1, Run.imported.is_(False),
                                    Run.published.is_(False), Run.precision == "fp32",
                                    Run.device != "gpu"):  # other precisions and GPUs: their own sections
            r = group[-1]
            if r.resolution == resolution_of(r.model) and all(x.median_ms for x in group):
                found.latest[(r.model, r.form, r.target)] = [x.median_ms for x in group]  # several: the newest
    return found


def roofline(engine, model: str, form: str = "reparam") -> dict[str, dict[str, tuple[float, float | None]]]:
    """target -> op class -> (achieved GFLOP/s, % of the host's best dense GEMM), from the roofline_by_class view."""
    found: dict[str, dict] = {}
    with engine.connect() as conn:
        for target, op_class, gflops, pct in conn.execute(text(
                "SELECT target, op_class, achieved_gflops, percent_of_peak FROM roofline_by_class "
                "WHERE model = :model AND form = :form"), {"model": model, "form": form}):
            found.setdefault(target, {})[op_class] = (gflops, pct)
    return found
