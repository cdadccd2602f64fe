"""Stored runs as rows and rich tables. Only valid runs show a latency."""
from __future__ import annotations

from rich.table import Table

import fastvit
from sqlalchemy import select
from sqlalchemy.orm import Session

from .storage import Run

COLUMNS = ["run", "model", "res", "batch", "form", "target", "threads", "status", "median_ms", "p90_ms",
           "ci95_low_ms", "ci95_high_ms", "cv", "n", "speedup"]


def _key(run: Run) -> tuple:
    return (run.host_id, run.model, run.resolution, run.batch, run.form, run.weights, run.threads)


def _rows(runs: list[Run], baseline: str) -> list[tuple]:
    base = {_key(r): r.median_ms for r in runs if r.target == baseline and r.status == "ok"}
    rows = []
    order = {name: i for i, name in enumerate(fastvit.list_models())}
    for r in sorted(runs, key=lambda r: (order.get(r.model, 99), r.model, r.resolution, r.batch, r.form, r.target)):
        ok = r.status == "ok"
        speedup = base.get(_key(r)) / r.median_ms if ok and base.get(_key(r)) else None
        rows.append((r.id, r.model, r.resolution, r.batch, r.form, r.target, r.threads, r.status,
                     r.median_ms if ok else None, r.p90_ms if ok else None,
                     r.median_ci_low_ms if ok else None, r.median_ci_high_ms if ok else None,
                     r.cv if ok else None, r.iterations if ok else None, speedup))
    return rows


def latest_rows(engine, baseline: str, models: list[str] | None = None) -> tuple[list[str], list[tuple]]:
    """The latest run (any status) of each model spec on each target."""
    with Session(engine) as session:
        runs = session.scalars(select(Run).order_by(Run.id)).all()
        latest = {}
        for r in runs:
            if not models or r.model in models:
                latest[(*_key(r), r.target)] = r
        return COLUMNS, _rows(list(latest.values()), baseline)


def runs_table(engine, run_ids: list[int], baseline: str, title: str) -> Table:
    with Session(engine) as session:
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids))).all()
        return rows_table(COLUMNS, _rows(list(runs), baseline), title)


def rows_table(columns: list[str], rows: list[tuple], title: str) -> Table:
    """A compact terminal table; --json/--csv carry every column unrounded."""
    table = Table(title=title)
    for heading in ("model", "res", "b", "form", "target", "thr", "status", "median ms", "p90 ms",
                    "median 95% CI", "CV", "n", "speedup"):
        table.add_column(heading, justify="left" if heading in ("model", "form", "target", "status") else "right")
    for row in rows:
        r = dict(zip(columns, row))
        ok = r["status"] == "ok"
        table.add_row(
            r["model"], str(r["res"]), str(r["batch"]), r["form"], r["target"], str(r["threads"]),
            "[green]ok[/green]" if ok else f"[red]{r['status']}[/red]",
            _num(r["median_ms"]), _num(r["p90_ms"]),
            f"{r['ci95_low_ms']:.2f}-{r['ci95_high_ms']:.2f}" if ok else "—",
            f"{r['cv']:.1%}" if ok else "—", str(r["n"]) if ok else "—",
            f"{r['speedup']:.2f}x" if r["speedup"] else "—",
        )
    return table


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
