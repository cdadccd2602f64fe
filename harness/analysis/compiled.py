"""Compiled against eager PyTorch: per model spec and device, the latest valid run of torch (eager) and of
torch-compile side by side, with what compiling cost (cold and warm) and whether the graph was whole."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..spec import model_sort_key
from ..store import Host, Run, latest_runs

EAGER, COMPILED = "torch", "torch-compile"


@dataclass(frozen=True)
class CompiledRow:
    host: str
    device: str
    gpu: str | None  # the GPU's name, on device gpu
    model: str
    resolution: int
    batch: int
    precision: str
    target: str  # the torch-compile target (its mode, where not the device's default)
    eager_ms: float | None
    compiled_ms: float
    compile_ms: float | None
    compile_warm_ms: float | None
    graph_breaks: int | None
    cold_reused: bool = False  # compile_ms kept from an earlier run's cold compile (harness.measure.compile_cost)

    @property
    def speedup(self) -> float | None:
        """eager / compiled latency: above 1, compiling paid at steady state."""
        return self.eager_ms / self.compiled_ms if self.eager_ms else None


def compiled_vs_eager(engine) -> list[CompiledRow]:
    """Every measured torch-compile run (latest per spec and target) beside the eager run of the same spec, host,
    device, threads and precision."""
    with Session(engine) as session:
        hosts = {h.id: h.hostname for h in session.scalars(select(Host))}
        runs = latest_runs(session, Run.backend.in_((EAGER, COMPILED)),
                           Run.imported.is_(False), Run.published.is_(False))
        key = lambda r: (r.host_id, r.device, r.model, r.resolution, r.batch, r.form, r.precision, r.threads)  # noqa: E731
        eager = {key(r): r.latency_ms for r in runs if r.backend == EAGER}
        rows = [CompiledRow(hosts[r.host_id], r.device, gpu_name(r), r.model, r.resolution, r.batch, r.precision,
                            r.target, eager.get(key(r)), r.latency_ms, r.compile_ms, r.compile_warm_ms,
                            r.graph_breaks, bool(r.compile_cold_reused))
                for r in runs if r.backend == COMPILED and r.form == "reparam" and r.latency_ms]
    return sorted(rows, key=lambda r: (r.host, r.device, r.precision, r.batch, model_sort_key(r.model),
                                       r.resolution, r.target))


def gpu_name(run: Run) -> str | None:
    """The CUDA device a GPU run was timed on, as torch named it."""
    if run.device != "gpu":
        return None
    return ((run.environment or {}).get("versions") or {}).get("gpu") or "unnamed GPU"
