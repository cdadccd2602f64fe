"""Stored runs as rows and rich tables. Only valid runs show a latency."""
from __future__ import annotations

from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

import fastvit

from .storage import Run

COLUMNS = ["run", "model", "res", "batch", "form", "target", "precision", "threads", "status", "imported",
           "median_ms", "mean_ms", "p90_ms", "ci95_low_ms", "ci95_high_ms", "cv", "n", "speedup"]
MEAN_ONLY = "*"  # marks a latency that is a mean: the vendor tool reported no median


def _spec_key(run: Run) -> tuple:
    """Runs that time the same model the same way, on any target (what a speedup compares)."""
    return (run.host_id, run.model, run.resolution, run.batch, run.form, run.weights, run.threads)


def _latest_key(run: Run) -> tuple:
    return (*_spec_key(run), run.target, run.precision)


def _baselines(session: Session, baseline: str) -> dict[tuple, float]:
    """Latest valid run of the baseline target for each model spec, from the whole database."""
    found = {}
    for run in session.scalars(select(Run).where(Run.target == baseline, Run.status == "ok").order_by(Run.id)):
        if run.latency_ms:
            found[_spec_key(run)] = run.latency_ms
    return found


def _rows(runs: list[Run], base: dict[tuple, float]) -> list[tuple]:
    order = {name: i for i, name in enumerate(fastvit.list_models())}
    rows = []
    for r in sorted(runs, key=lambda r: (order.get(r.model, 99), r.model, r.resolution, r.batch, r.form, r.target)):
        ok = r.status == "ok"
        latency = r.latency_ms if ok else None
        reference = base.get(_spec_key(r))
        rows.append((r.id, r.model, r.resolution, r.batch, r.form, r.target, r.precision, r.threads, r.status,
                     bool(r.imported), r.median_ms if ok else None, r.mean_ms if ok else None,
                     r.p90_ms if ok else None, r.median_ci_low_ms if ok else None,
                     r.median_ci_high_ms if ok else None, r.cv if ok else None, r.iterations if ok else None,
                     reference / latency if latency and reference else None))
    return rows


def latest_rows(engine, baseline: str, models: list[str] | None = None) -> tuple[list[str], list[tuple]]:
    """The latest run (any status) of each model spec on each target and precision."""
    with Session(engine) as session:
        latest = {}
        for r in session.scalars(select(Run).order_by(Run.id)):
            if not models or r.model in models:
                latest[_latest_key(r)] = r
        return COLUMNS, _rows(list(latest.values()), _baselines(session, baseline))


def runs_table(engine, run_ids: list[int], baseline: str, title: str) -> Table:
    with Session(engine) as session:
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids))).all()
        return rows_table(COLUMNS, _rows(list(runs), _baselines(session, baseline)), title)


def rows_table(columns: list[str], rows: list[tuple], title: str) -> Table:
    """A compact terminal table; --json/--csv carry every column unrounded."""
    table = Table(title=title)
    for heading in ("model", "res", "b", "form", "target", "prec", "thr", "status", "median ms", "p90 ms",
                    "median 95% CI", "CV", "n", "speedup"):
        table.add_column(heading, justify="left" if heading in ("model", "form", "target", "status") else "right")
    mean_only = False
    for row in rows:
        r = dict(zip(columns, row))
        ok = r["status"] == "ok"
        if ok and r["median_ms"] is None and r["mean_ms"] is not None:
            latency, mean_only = f"{r['mean_ms']:.2f}{MEAN_ONLY}", True
        else:
            latency = fmt_ms(r["median_ms"])
        status = ("[green]ok[/green]" if ok else f"[red]{r['status']}[/red]") + (" (imported)" if r["imported"] else "")
        table.add_row(
            r["model"], str(r["res"]), str(r["batch"]), r["form"], r["target"], r["precision"], str(r["threads"]),
            status, latency, fmt_ms(r["p90_ms"]),
            f"{r['ci95_low_ms']:.2f}-{r['ci95_high_ms']:.2f}" if r["ci95_low_ms"] is not None else "—",
            f"{r['cv']:.1%}" if r["cv"] is not None else "—", str(r["n"]) if r["n"] else "—",
            f"{r['speedup']:.2f}x" if r["speedup"] else "—",
        )
    if mean_only:
        table.caption = f"{MEAN_ONLY} mean: the vendor tool reported no median"
    return table


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
