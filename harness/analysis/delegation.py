"""How much of one model spec each delegate (ExecuTorch's XNNPACK, Core ML partitioners) takes: per backend
and op class the nodes and FLOPs delegated or left on portable kernels, and which op types fell back.
Computed once here; `harness coverage`, `explain`, findings and the dashboard render it."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..store import coverage
from .coverage import CoverageSplit, split

COLUMNS = ("backend", "partitioner", "op_class", "op_type", "kernel", "depthwise", "delegated_nodes", "portable_nodes",
           "delegated_flops", "portable_flops")


class BackendDelegation(CoverageSplit):
    """One delegating backend: `detail` is its partitioner; inside: delegated, outside: portable kernels."""

    @property
    def partitioner(self) -> str:
        return self.detail

    @property
    def left(self) -> list[str]:
        """Op types left on portable kernels: 'aten.gelu x4'."""
        return [f"{op['op_type']} x{op['portable_nodes']}" for op in self.ops if op["portable_nodes"]]

    @property
    def flop_share(self) -> float:
        found = super().flop_share
        return 1.0 if found is None else found  # nothing counted: nothing was left out


def delegation(engine, model: str, resolution: int, form: str) -> list[BackendDelegation]:
    """Every stored delegation coverage of one model spec, per backend (op classes by largest FLOPs first)."""
    with Session(engine) as session:
        rows = [{c: getattr(r, c) for c in COLUMNS} for r in coverage(session, model, resolution, form)]
    return [BackendDelegation(s.backend, s.detail, s.classes, s.ops)
            for s in split(rows, "partitioner", "delegated", "portable")]
