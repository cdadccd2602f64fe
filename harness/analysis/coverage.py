"""One aggregate for both coverages: per backend and op class, the nodes and FLOPs inside (delegated to the
accelerator's partition, or computed in int8) and outside (left on portable kernels, or kept in float)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ClassSplit:
    op_class: str
    inside_nodes: int = 0
    outside_nodes: int = 0
    inside_flops: int = 0
    outside_flops: int = 0

    @property
    def flop_share(self) -> float | None:
        """The share of this class's FLOPs inside (None: no FLOPs counted)."""
        total = self.inside_flops + self.outside_flops
        return self.inside_flops / total if total else None


@dataclass
class CoverageSplit:
    """One backend's coverage of one model spec: `detail` is the partitioner (delegation) or the precision."""
    backend: str
    detail: str
    classes: dict[str, ClassSplit] = field(default_factory=dict)
    ops: list[dict] = field(default_factory=list)  # the stored rows, one per op type

    def add(self, row: dict, inside_nodes: int, outside_nodes: int, inside_flops: int, outside_flops: int) -> None:
        cell = self.classes.setdefault(row["op_class"], ClassSplit(row["op_class"]))
        cell.inside_nodes += inside_nodes
        cell.outside_nodes += outside_nodes
        cell.inside_flops += inside_flops
        cell.outside_flops += outside_flops
        self.ops.append(row)

    @property
    def inside_nodes(self) -> int:
        return sum(c.inside_nodes for c in self.classes.values())

    @property
    def nodes(self) -> int:
        return sum(c.inside_nodes + c.outside_nodes for c in self.classes.values())

    @property
    def flop_share(self) -> float | None:
        inside = sum(c.inside_flops for c in self.classes.values())
        total = inside + sum(c.outside_flops for c in self.classes.values())
        return inside / total if total else None

    @property
    def outside_classes(self) -> list[str]:
        """Op classes with nodes outside, largest FLOPs first (those with FLOPs), then by node count."""
        return [c.op_class for c in sorted(self.classes.values(), key=lambda c: (-c.outside_flops, -c.outside_nodes))
                if c.outside_nodes]


def split(rows: list[dict], detail: str, inside: str, outside: str) -> list[CoverageSplit]:
    """Stored coverage rows (dicts, in the store's order) per backend and `detail` column; `inside`/`outside`:
    the column prefixes of their node and FLOP counts ('delegated'/'portable', 'low'/'float')."""
    found: dict[tuple[str, str], CoverageSplit] = {}
    for row in rows:
        entry = found.setdefault((row["backend"], row[detail]), CoverageSplit(row["backend"], row[detail]))
        entry.add(row, row[f"{inside}_nodes"], row[f"{outside}_nodes"], row[f"{inside}_flops"],
                  row[f"{outside}_flops"])
    return list(found.values())
