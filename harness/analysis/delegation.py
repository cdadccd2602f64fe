"""How much of one model spec each delegate (ExecuTorch's XNNPACK, Core ML partitioners) takes: per backend
and op class the nodes and FLOPs delegated or left on portable kernels, and which op types fell back.
Computed once here; `harness coverage`, `explain`, findings and the dashboard render it."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ..store import coverage


@dataclass
class ClassDelegation:
    op_class: str
    delegated_nodes: int = 0
    portable_nodes: int = 0
    delegated_flops: int = 0
    portable_flops: int = 0

    @property
    def flop_share(self) -> float | None:
        total = self.delegated_flops + self.portable_flops
        return self.delegated_flops / total if total else None


@dataclass
class BackendDelegation:
    backend: str
    partitioner: str
    classes: dict[str, ClassDelegation] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)  # op types left on portable kernels, "aten.gelu x4"

    @property
    def delegated_nodes(self) -> int:
        return sum(c.delegated_nodes for c in self.classes.values())

    @property
    def nodes(self) -> int:
        return sum(c.delegated_nodes + c.portable_nodes for c in self.classes.values())

    @property
    def flop_share(self) -> float:
        delegated = sum(c.delegated_flops for c in self.classes.values())
        total = delegated + sum(c.portable_flops for c in self.classes.values())
        return delegated / total if total else 1.0


def delegation(engine, model: str, resolution: int, form: str) -> list[BackendDelegation]:
    """Every stored delegation coverage of one model spec, per backend (op classes by largest FLOPs first)."""
    found: dict[str, BackendDelegation] = {}
    with Session(engine) as session:
        for row in coverage(session, model, resolution, form):
            entry = found.setdefault(row.backend, BackendDelegation(row.backend, row.partitioner))
            cell = entry.classes.setdefault(row.op_class, ClassDelegation(row.op_class))
            cell.delegated_nodes += row.delegated_nodes
            cell.portable_nodes += row.portable_nodes
            cell.delegated_flops += row.delegated_flops
            cell.portable_flops += row.portable_flops
            if row.portable_nodes:
                entry.left.append(f"{row.op_type} x{row.portable_nodes}")
    return list(found.values())
