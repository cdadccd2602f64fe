"""Coverage as tables: which ops each delegate takes (analysis.delegation) and which each runtime computes in
int8 (analysis.precision)."""
from __future__ import annotations

from ..analysis.delegation import COLUMNS as DELEGATION_COLUMNS
from ..analysis.delegation import BackendDelegation
from ..analysis.precision import BackendCoverage
from . import formats
from .table import Cell, Column, Row, Table, table

DELEGATION_KEYS = list(DELEGATION_COLUMNS)  # each stored op, as the store keeps it


def delegation_table(found: list[BackendDelegation], model: str, resolution: int, form: str) -> Table:
    """Per backend and op class: nodes delegated / left on portable kernels, and the FLOPs delegated; every stored
    op a JSON record."""
    rows = [Row({"backend": b.backend, "op_class": c.op_class, "delegated_nodes": c.inside_nodes,
                 "portable_nodes": Cell(c.outside_nodes, tone="bad" if c.outside_nodes else None),
                 "flop_share": c.flop_share}) for b in found for c in b.classes.values()]
    columns = [Column("backend"), Column("op_class", "op class"), Column("delegated_nodes", "delegated", "count"),
               Column("portable_nodes", "portable", "count"), Column("flop_share", "FLOPs delegated", "share", 1)]
    return Table("delegation-classes", f"which ops of {model} ({form}, {resolution}px) each delegate takes",
                 columns, rows, records_=[op for b in found for op in b.ops],
                 record_keys=DELEGATION_KEYS)


def delegation_summary_table(found: list[BackendDelegation], models: list[str] | None = None) -> Table:
    """Per backend (and model, `models` naming each's): how much of the graph the delegate took, and what it left
    on portable kernels."""
    rows = [((models[i],) if models else ()) + (b.backend, b.partitioner, b.inside_nodes, b.nodes, b.flop_share,
                                                b.left) for i, b in enumerate(found)]
    columns = ([Column("model")] if models else []) + [
        Column("backend"), Column("partitioner"), Column("delegated_nodes", "nodes delegated", "count"),
        Column("nodes", "of nodes", "count"), Column("flop_share", "FLOPs delegated", "share", 1),
        Column("left", "left on portable kernels")]
    return table("delegation", "delegation coverage per backend", columns, rows)


PRECISION_KEYS = ["backend", "precision", "op_class", "low_nodes", "float_nodes", "low_flops", "float_flops"]


def precision_coverage_table(found: list[BackendCoverage], model: str, resolution: int, form: str) -> Table:
    """Per backend, precision and op class (largest FLOPs first): nodes in int8 and in float, the FLOPs in int8."""
    rows = []
    for b in found:
        for c in sorted(b.classes.values(), key=lambda c: -(c.inside_flops + c.outside_flops)):
            rows.append(Row({"backend": b.backend, "precision": b.precision, "op_class": c.op_class,
                             "low_nodes": c.inside_nodes,
                             "float_nodes": Cell(c.outside_nodes, tone="bad" if c.outside_nodes else None),
                             "low_flops": c.inside_flops, "float_flops": c.outside_flops,
                             "flop_share": c.flop_share}))
    columns = [Column("backend"), Column("precision"), Column("op_class", "op class"),
               Column("low_nodes", "int8 nodes", "count"), Column("float_nodes", "float nodes", "count"),
               Column("low_flops", shown=False), Column("float_flops", shown=False),
               Column("flop_share", "FLOPs in int8", "share", 1, data=False)]
    notes = [f"{b.backend} {b.precision}: {b.inside_nodes} of {b.nodes} nodes"
             + (f", {formats.share(b.flop_share, 1)} of FLOPs" if b.flop_share is not None else "") + " in int8"
             + (f"; kept in float: {', '.join(b.kept_float)}" if b.kept_float else "") for b in found]
    return Table("quantization", f"which ops of {model} ({form}, {resolution}px) each runtime computes in low "
                 "precision", columns, rows, notes)
