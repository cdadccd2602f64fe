"""A run's samples as the dashboard shows them, aggregated by the database: the timed latencies of several
runs as histograms (one GROUP BY, however many samples), and one run's samples in the order they were taken
(first call, warm-up, timed), thinned in SQL past a limit, so warm-up drift and throttling show."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..store import Sample

BINS = 40
MAX_POINTS = 4000  # samples of one run drawn in order; past this, every k-th


@dataclass
class Histogram:
    run_id: int
    low_ms: float
    width_ms: float
    counts: list[int] = field(default_factory=list)  # per bin, BINS of them (the last holds the maximum)

    @property
    def centres_ms(self) -> list[float]:
        return [self.low_ms + (i + 0.5) * self.width_ms for i in range(len(self.counts))]

    @property
    def total(self) -> int:
        return sum(self.counts)


def histograms(engine, run_ids: list[int], bins: int = BINS) -> dict[int, Histogram]:
    """Each run's timed samples in `bins` equal bins between its own minimum and maximum, counted in SQL
    (integer arithmetic, the same in SQLite and PostgreSQL)."""
    if not run_ids:
        return {}
    timed = (Sample.run_id.in_(run_ids), Sample.phase == "timed")
    bounds = (select(Sample.run_id, func.min(Sample.latency_ns).label("lo"), func.max(Sample.latency_ns).label("hi"))
              .where(*timed).group_by(Sample.run_id).subquery())
    bin_of = ((Sample.latency_ns - bounds.c.lo) * bins // (bounds.c.hi - bounds.c.lo + 1)).label("bin")
    with Session(engine) as session:
        limits = {r.run_id: (r.lo, r.hi) for r in session.execute(select(bounds))}
        counts = session.execute(select(Sample.run_id, bin_of, func.count()).join(
            bounds, bounds.c.run_id == Sample.run_id).where(*timed).group_by(Sample.run_id, bin_of)).all()
    found = {run_id: Histogram(run_id, lo / 1e6, (hi - lo + 1) / bins / 1e6, [0] * bins)
             for run_id, (lo, hi) in limits.items()}
    for run_id, index, count in counts:
        found[run_id].counts[int(index)] = count
    return found


@dataclass
class InOrder:
    """One run's samples by phase, in the order taken: iteration numbers and milliseconds."""
    phases: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    every: int = 1  # 1: every sample; k: every k-th (the run has more than MAX_POINTS)
    total: int = 0


PHASES = ("first", "warmup", "timed")


def in_order(engine, run_id: int, max_points: int = MAX_POINTS) -> InOrder:
    with Session(engine) as session:
        total = session.scalar(select(func.count()).where(Sample.run_id == run_id))
        every = max(1, -(-total // max_points))
        rows = session.execute(select(Sample.phase, Sample.iteration, Sample.latency_ns).where(
            Sample.run_id == run_id, Sample.iteration % every == 0).order_by(Sample.phase, Sample.iteration)).all()
    found = InOrder(every=every, total=total)
    for phase in PHASES:
        points = [(i, ns / 1e6) for p, i, ns in rows if p == phase]
        if points:
            found.phases[phase] = ([i for i, _ in points], [ms for _, ms in points])
    return found
