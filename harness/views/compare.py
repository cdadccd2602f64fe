"""`harness compare` as a table: every model on every device and target (measured, imported, published), then
each headline claim as a speedup per column beside the paper's figures, and what a claim without one lacks."""
from __future__ import annotations

from ..analysis.compare import HEADLINE, Column as Source, Comparison, Missing
from .claims import NOISY_NOTE, SPEEDUP_NOTE
from .table import Cell, Column, Lacking, Link, Row, Table

RECORD_KEYS = ["kind", "name", "resolution", "host", "target", "origin", "value", "paper_mobile", "paper_gpu",
               "citation", "noisy", "note"]
LACKING_INTRO = "a claim without a speedup (—) lacks runs:"
PREDICTED = "predicted"  # the mark of a cell `harness predict` filled (compare --predicted)
PREDICTED_NOTE = ("predicted: no run of it there; the newest predictor fitted for that host and target estimates it "
                  "(harness predict); not a measurement, and no speedup or claim uses it")


def _records(found: Comparison) -> list[dict]:
    """Long rows: a value per (model, column), a speedup per (headline claim, column), then per claim and host the
    targets it cannot be computed on ('missing': what they lack and the command that adds it)."""
    rows = [(found.metric.kind, m, found.resolution[m], c.host, c.target, c.origin, found.values[(m, c)], None,
             None, c.citation, (m, c) in found.noisy, None)
            for m in found.models for c in found.columns if (m, c) in found.values]
    rows += [("predicted_" + found.metric.kind, m, found.resolution[m], c.host, c.target, c.origin,
              found.predicted[(m, c)], None, None, None, False, PREDICTED_NOTE)
             for m in found.models for c in found.columns if (m, c) in found.predicted]
    rows += [("speedup", claim.key, None, c.host, c.target, c.origin, found.speedup(claim, c), claim.paper_mobile,
              claim.paper_gpu, c.citation, (claim.fast, c) in found.noisy or (claim.slow, c) in found.noisy, None)
             for claim in HEADLINE for c in found.columns if found.speedup(claim, c)]
    rows += [("missing", m.claim.key, None, m.host, ", ".join(m.targets), m.origin, None, m.claim.paper_mobile,
              m.claim.paper_gpu, None, False, f"{m.needs}: {m.remedy}") for m in found.missing]
    if found.hint:
        rows.append(("hint", "published", None, None, None, None, None, None, None, None, False, found.hint))
    return [dict(zip(RECORD_KEYS, row)) for row in rows]


def lacking(missing: list[Missing], one_host: bool = False) -> list[Lacking]:
    """What each claim without a speedup needs, and the command that adds it (published figures: why none can).
    one_host: the subject is the claim alone (a findings file is about one host)."""
    found = []
    for m in missing:
        if one_host:
            subject = m.claim.key
        else:
            where = ", ".join(m.targets) if len(m.targets) < 3 else f"{len(m.targets)} targets"
            subject = f"{m.claim.label} on {m.host} {where}"
        command = m.remedy if m.origin != "published" else None
        found.append(Lacking(subject, m.needs, command, None if command else m.remedy))
    return found


def _heading(column: Source, citations: dict[str, int]) -> tuple[str, str]:
    mark = ""
    if column.origin == "published":
        mark = f"[{citations.setdefault(column.citation, len(citations) + 1)}]"
    heading = f"{column.host}\n{column.target}" + (f"\n({column.origin})" if column.origin != "measured" else "")
    return heading, mark


def compare_table(found: Comparison) -> Table:
    latency = found.metric.kind == "latency_ms"
    citations: dict[str, int] = {}
    keys = {column: f"c{i}" for i, column in enumerate(found.columns)}
    columns = [Column("model", "model / claim" if latency else "model", label=True)]
    for column, key in keys.items():
        heading, mark = _heading(column, citations)
        columns.append(Column(key, heading, "ms" if latency else "decimal", mark=mark))
    rows = []
    for model in found.models:
        values = {"model": Cell(model, link=Link("model", (("name", model), ("resolution", found.resolution[model]))))}
        for column, key in keys.items():
            if (model, column) in found.values:
                values[key] = Cell(found.values[(model, column)], ("noisy",) if (model, column) in found.noisy else ())
            elif (model, column) in found.predicted:
                values[key] = Cell(found.predicted[(model, column)], (PREDICTED,), tone=PREDICTED)
        rows.append(Row(values))
    if rows and latency:
        rows[-1].end_section = True  # a rule between latencies and speedups
    for claim in HEADLINE if latency else ():  # every claim, so one no target computes yet shows what it lacks
        values = {"model": claim.label + (f" (paper: {claim.paper_figures})" if claim.figures else " (faster?)")}
        for column, key in keys.items():
            speedup = found.speedup(claim, column)
            values[key] = Cell(speedup, tone=("good" if speedup >= claim.claimed else "bad") if speedup else None,
                               kind="ratio")
        rows.append(Row(values, attributes={"claim": claim.key}))
    notes = [f"[{n}] {citation}" for citation, n in citations.items()]
    if latency:
        notes.append(f"{SPEEDUP_NOTE}; green: reaches the paper's figure")
    if found.noisy:
        notes.append(NOISY_NOTE)
    if found.predicted:
        notes.append(PREDICTED_NOTE)
    title = (f"{found.metric.name} per device and target, {found.metric.unit} (fused form, batch 1, each model at "
             "its own resolution)") + ("; below, the paper's claims as speedups on each" if latency else "")
    return Table("matrix", title, columns, rows, notes, lacking(found.missing), LACKING_INTRO,
                 footer=[found.hint] if found.hint else [], records_=_records(found), record_keys=RECORD_KEYS)
