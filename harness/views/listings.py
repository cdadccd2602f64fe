"""The smaller tables commands print: targets, lab agents' targets, AI Hub devices, variants, a merge, peaks,
`harness doctor`, and any SQL result."""
from __future__ import annotations

import fastvit

from .table import Cell, Column, Table, table

def devices_table(statuses) -> Table:
    """`harness devices`: every target, available or the one-line reason it is not."""
    rows = [(t.device, t.name, Cell(reason is None, tone="good" if reason is None else "bad"), reason)
            for t, reason in statuses]
    return table("devices", "targets", [Column("device"), Column("target"), Column("available", kind="yes_no"),
                                        Column("reason", kind="blank")], rows)


def lab_devices_table(found: dict) -> Table:
    """`harness devices --cluster`: every agent's targets."""
    rows = [(agent, t.device, t.name, reason is None, reason) for agent, statuses in sorted(found.items())
            for t, reason in statuses]
    return table("lab-devices", "targets of every agent", [Column("agent"), Column("device"), Column("target"),
                                                            Column("available", kind="yes_no"),
                                                            Column("reason", kind="blank")], rows)


def farm_devices_table(found) -> Table:
    """`harness devices --aihub`: the farm's devices (backends.aihub.FarmDevice) and the --device that names each."""
    rows = [(d.name, d.chipset, d.os, ", ".join(d.runtimes), f"aihub:{d.name}") for d in found]
    return table("farm-devices", "Qualcomm AI Hub devices", [Column("device"), Column("chipset"), Column("os"),
                                                             Column("runtimes"), Column("--device", kind="command")],
                 rows)


def models_table(resolution: int) -> Table:
    """FastViT variants: measured params and GMACs beside the paper's figures. ValueError for a bad resolution."""
    rows = []
    for name in fastvit.list_models():
        c, p = fastvit.count(name, resolution), fastvit.PAPER_TABLE[name]
        rows.append((name, round(c.params_train / 1e6, 2), round(c.gmacs, 2), p.params_m, p.gmacs, p.top1,
                     p.iphone12pro_ms))
    return table("models", f"FastViT variants at {resolution}x{resolution}",
                 [Column("variant", label=True), Column("params_m", kind="decimal"), Column("gmacs", kind="decimal"),
                  Column("paper_params_m", kind="decimal", digits=1), Column("paper_gmacs", kind="decimal", digits=1),
                  Column("paper_top1", kind="decimal", digits=1), Column("iphone12pro_ms", kind="decimal", digits=1)],
                 rows)


def merged_table(merged, source: str) -> Table:
    """What `harness merge` added, per kind of row (store.merge.Merged)."""
    return table("merged", f"merged from {source} (runs_present: already here, skipped)",
                 [Column("rows"), Column("count", kind="count")], list(vars(merged).items()))


def peaks_table(outcomes, size: int, threads: int) -> Table:
    rows = [{"target": t.name, "gflops": r.gflops,
             "status": Cell(r.status, tone="good" if r.status == "ok" else "bad"), "error": r.error}
            for t, r in outcomes]
    return table("peaks", f"dense GEMM peak, {size}x{size} fp32, {threads} threads",
                 [Column("target"), Column("gflops", "GFLOP/s", "decimal", 1), Column("status"),
                  Column("error", kind="blank")], rows)


def doctor_table(findings) -> Table:
    """`harness doctor`: each item read from the OS, and advice where it will move numbers."""
    rows = []
    for f in findings:
        unread = f.value.startswith(("not exposed", "none attached"))
        verdict = Cell(f.advice, tone="warn") if f.advice else Cell(None) if unread else Cell("ok", tone="good")
        rows.append({"item": f.item, "value": f.value, "advice": f.advice or None, "verdict": verdict})
    return table("doctor", "what on this machine will move a number",
                 [Column("item"), Column("value"), Column("advice", shown=False),
                  Column("verdict", "advice", data=False)], rows)


def query_table(columns: list[str], rows: list[tuple]) -> Table:
    """Any SQL result, as the database returned it."""
    return table("query", "", [Column(c, kind="blank") for c in columns], rows)
