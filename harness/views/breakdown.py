"""Where one model's time goes per target (analysis.explain): op classes down, targets across."""
from __future__ import annotations

from ..analysis.explain import Breakdown
from ..analysis.layers import LayerTable
from . import formats
from .claims import NOISY_NOTE
from .table import Column, Link, Row, Table, table

RECORD_KEYS = ["op_class", "target", "run", "median_ms", "noisy", "ms", "share"]
PROFILED_NOTE = "profiled separately after timing; profilers add overhead, so compare shares across targets"


def breakdown_table(found: Breakdown, model: str, form: str, resolution: int, limit: int | None = None) -> Table:
    """ms per inference and share of the profile per op class (largest first, `limit` of them) and target;
    every (op class, target) a JSON record, so JSON needs no nesting."""
    columns = [Column("op_class", "op class", label=True)]
    for i, t in enumerate(found.targets):
        columns.append(Column(f"t{i}", f"{t['target']}\n{formats.ms(t['median_ms'])} ms timed" if t["median_ms"] else
                              t["target"], "part", mark="noisy" if t["noisy"] else "",
                              link=Link("run", (("run_id", t["run_id"]),))))
    rows = [Row({"op_class": row["op_class"], **{f"t{i}": (cell["ms"], cell["share"]) if cell else None
                                                 for i, cell in enumerate(row["cells"])}})
            for row in found.rows[:limit]]
    records = [dict(zip(RECORD_KEYS, (row["op_class"], t["target"], t["run_id"], t["median_ms"], t["noisy"],
                                      cell["ms"], cell["share"])))
               for row in found.rows for t, cell in zip(found.targets, row["cells"]) if cell]
    notes = [PROFILED_NOTE] + ([NOISY_NOTE] if any(t["noisy"] for t in found.targets) else [])
    return Table("breakdown", f"where {model} ({form}, {resolution}px) spends its time, ms per inference (share)",
                 columns, rows, notes, records_=records, record_keys=RECORD_KEYS)


def two_views_table(found: Breakdown, layered: LayerTable) -> Table:
    """explain's two views side by side, per op class and target: the runtime's profiler (shares of its profile)
    and the layers timed alone (shares of their sum), and how far the shares agree."""
    rows = []
    for i, t in enumerate(found.targets):
        target = t["target"]
        if target not in layered.targets:
            continue
        per_class = layered.by_class(target)
        layered_sum = sum(per_class.values())
        for row in found.rows:
            cell = row["cells"][i]
            share_l = per_class.get(row["op_class"], 0.0) / layered_sum if layered_sum else None
            if cell or share_l:
                share_p = cell["share"] if cell else 0.0
                rows.append((row["op_class"], target, cell["ms"] if cell else None, share_p,
                             per_class.get(row["op_class"]), share_l,
                             share_p - share_l if share_l is not None else None))
    return table("two-views", "two views: the profiler's and the layers timed alone (attention blocks are one layer: "
                 "their matmuls, softmax and linears together)",
                 [Column("op_class", "op class", label=True), Column("target"),
                  Column("profiler_ms", "profiler ms", "ms"), Column("profiler_share", "profiler share", "share"),
                  Column("layers_ms", "layers ms", "ms"), Column("layers_share", "layers share", "share"),
                  Column("share_difference", "difference", "share")], rows)
