"""The cross-device view: every model's latest latency on every device and target (measured,
imported, published) side by side, and per device the paper's headline claims as speedups beside
the paper's own figures, so "fast on an iPhone, slower elsewhere" is read off in one look."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..spec import model_sort_key
from ..store import Host, Run, latest_runs
from .claims import CLAIMS, Claim

# The paper's three speed claims against other architectures (the reparam-vs-train ones are per model).
HEADLINE = tuple(c for c in CLAIMS if not c.key.startswith("reparam_"))


@dataclass(frozen=True)
class Column:
    """One device and target: where a column's latencies come from."""
    host: str
    target: str
    origin: str  # measured | imported | published
    citation: str | None = None

    @property
    def label(self) -> str:
        return f"{self.host} {self.target}" + ("" if self.origin == "measured" else f" ({self.origin})")


@dataclass
class Comparison:
    columns: list[Column] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    latency_ms: dict[tuple[str, Column], float] = field(default_factory=dict)
    resolution: dict[str, int] = field(default_factory=dict)
    noisy: set[tuple[str, Column]] = field(default_factory=set)  # (model, column) timed beside other work

    def speedup(self, claim: Claim, column: Column) -> float | None:
        """latency(slow) / latency(fast) on one column, where it holds both."""
        fast, slow = self.latency_ms.get((claim.fast, column)), self.latency_ms.get((claim.slow, column))
        return slow / fast if fast and slow else None


def latest_fused(session: Session, resolution_of) -> list[Run]:
    """The latest valid run with a latency of each model in its fused form, batch 1, at the resolution
    it is compared at (`resolution_of(model)`), per host, target, threads and precision."""
    return [run for run in latest_runs(session, Run.form == "reparam", Run.batch == 1)
            if run.resolution == resolution_of(run.model) and run.latency_ms]


def compare(engine, resolution_of) -> Comparison:
    """The latest valid latency of each model (fused form, batch 1, at its own resolution) on each
    (host, target); where several thread counts or precisions were timed, the newest run."""
    found = Comparison()
    with Session(engine) as session:
        hosts = {h.id: h.hostname for h in session.scalars(select(Host))}
        columns: dict[tuple, Column] = {}
        for run in latest_fused(session, resolution_of):
            column = columns.setdefault((run.host_id, run.target, run.origin), Column(
                hosts[run.host_id], run.target, run.origin, run.citation))
            found.latency_ms[(run.model, column)] = run.latency_ms
            if run.noisy:
                found.noisy.add((run.model, column))
            found.resolution[run.model] = run.resolution
    origin_order = {"published": 0, "imported": 1, "measured": 2}
    found.columns = sorted(columns.values(), key=lambda c: (origin_order[c.origin], c.host, c.target))
    found.models = sorted({m for m, _ in found.latency_ms}, key=model_sort_key)
    return found
