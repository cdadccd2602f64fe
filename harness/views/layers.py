"""`harness layers` as tables (analysis.layers): each distinct layer's time alone per target, and the layers one
target runs far slower than the best target of its host."""
from __future__ import annotations

from ..analysis.layers import OUTLIER_RATIO, LayerTable
from . import formats
from .table import Cell, Column, Row, Table, table

RECORD_KEYS = ["layer", "op_class", "count", "target", "ms_per_call", "net_ms", "total_ms", "share", "gflops"]


def _records(found: LayerTable) -> list[dict]:
    """Long rows: one per (layer, target); then per target the overhead, the sum of layers and the whole model
    (their layer names in angle brackets)."""
    rows = []
    for row in found.rows:
        for target in found.targets:
            if target in row.ms:
                net = row.net_ms(target, found.overhead)
                rows.append((row.signature, row.op_class, row.count, target, row.ms[target], net,
                             found.total_ms(row, target), found.share(row, target),
                             row.flops / (net * 1e6) if row.flops and net else None))
    for target in found.targets:
        rows.append(("<overhead per call>", "overhead", 1, target, found.overhead.get(target), None, None, None, None))
        rows.append(("<sum of layers>", "sum", None, target, None, None, found.sum_ms(target), 1.0, None))
        whole = found.whole_ms.get(target)
        rows.append(("<whole model>", "whole", 1, target, whole, None, whole, found.ratio_to_whole(target), None))
    return [dict(zip(RECORD_KEYS, row)) for row in rows]


def layers_table(found: LayerTable, model: str, resolution: int, limit: int | None = None) -> Table:
    """Layers down (largest first, `limit` of them), targets across: ms per call less the runtime's empty-model
    overhead, x count, = ms per inference (share of the sum); then the overhead, the sums and the whole model."""
    keys = {target: f"t{i}" for i, target in enumerate(found.targets)}
    columns = [Column("layer", "layer (count)", label=True), Column("op_class", "op class")]
    columns += [Column(key, target, "layer") for target, key in keys.items()]
    rows = [Row({"layer": f"{row.signature} ({row.count})", "op_class": row.op_class,
                 **{key: (row.net_ms(t, found.overhead), row.count, found.total_ms(row, t), found.share(row, t))
                    for t, key in keys.items()}}) for row in found.rows[:limit]]
    if rows:
        rows[-1].end_section = True
    summary = (("runtime overhead per call", "ms", lambda t: found.overhead.get(t)),
               ("sum of layers", "ms", found.sum_ms),
               ("whole model (latest run)", "ms", lambda t: found.whole_ms.get(t)),
               ("sum / whole", "decimal", found.ratio_to_whole))
    rows += [Row({"layer": name, **{key: Cell(value(t), kind=kind) for t, key in keys.items()}})
             for name, kind, value in summary]
    overheads = ", ".join(f"{t} {formats.ms(ms, 3)} ms" for t, ms in found.overhead.items())
    notes = [f"ms per call less each runtime's empty-model overhead ({overheads}), x count = ms per inference "
             "(share of the sum of layers)"] if overheads else []
    return Table("layers", f"{model} ({resolution}px) layer by layer: ms per call less the runtime's empty-model "
                 "overhead, x count, share of the sum", columns, rows, notes, records_=_records(found),
                 record_keys=RECORD_KEYS)


def outliers_table(found: LayerTable) -> Table:
    rows = [(o.signature, o.op_class, o.target, o.ratio, o.best_target, o.share, o.gflops) for o in found.outliers()]
    return table("outliers", f"layers {OUTLIER_RATIO:g}x or more slower than on the best target of this host",
                 [Column("layer", label=True), Column("op_class", "op class"), Column("target"),
                  Column("ratio", "slower by", "ratio", 1), Column("best_target", "than on"),
                  Column("share", "share of its layers", "share"), Column("gflops", "GFLOP/s", "decimal", 1)], rows)
