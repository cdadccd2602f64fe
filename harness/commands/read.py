"""The verbs that read results: each computes an analysis result, lays it out as views/ tables and prints them
(or serves them)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .. import store
from ..baselines import own_resolution
from ..spec import Form, canonical_model
from ..views import listings
from ..views.serialize import Format
from ..views.terminal import show
from .common import (READ, ClaimKind, CompareMetric, DbOption, FormatOption, FormOption, checked, console, err, fail,
                     open_db, open_db_with_runs, single_form)

app = typer.Typer()


@app.command(rich_help_panel=READ)
def models(resolution: int = typer.Option(256, "--resolution"), fmt: FormatOption = Format.table):
    """Variants with params, GMACs (measured) and the paper's figures."""
    show(console, fmt, checked(listings.models_table, resolution))


@app.command(rich_help_panel=READ)
def explain(
    model: str = typer.Option(..., "--model"),
    device: str = typer.Option("cpu", "--device", help="only targets on this device family or device"),
    resolution: int = typer.Option(256, "--resolution"),
    form: FormOption = Form.reparam,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Where one model's time goes on each target: per-op-class milliseconds and shares; beside them the layers
    timed alone and the coverage, where stored."""
    from ..views.pages import explain_tables

    name, form_name = checked(canonical_model, model), single_form(form, "explain")
    tables = explain_tables(open_db_with_runs(db), name, resolution, form_name, device)
    if not tables:
        fail(f"no profiled valid run of {name} at {resolution}px ({form_name}) on {device!r}; "
             f"run `harness run --device {device} --model {model}` first")
    show(console, fmt, *(tables if fmt == Format.table else tables[:1]))


show_app = typer.Typer(no_args_is_help=True, help="Everything stored about one model spec, or one run: the tables "
                       "of its dashboard page, and with --format json the same document the page answers as .json.")
app.add_typer(show_app, name="show", rich_help_panel=READ)


@show_app.command("model")
def show_model(
    model: str = typer.Argument(..., help="FastViT variant or baseline"),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="default: the model's own (FastViT 256)"),
    form: FormOption = Form.reparam,
    batch: int = typer.Option(1, "--batch", min=1),
    device: str = typer.Option("cpu", "--device", help="device of the profiles and layers shown"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Latest run per target, where the time goes, layers timed alone and coverage of one model spec
    (the dashboard's /model/NAME)."""
    from ..views.pages import model_page

    name = checked(canonical_model, model)
    found = model_page(open_db_with_runs(db), name, resolution or own_resolution()(name),
                       single_form(form, "show model"), batch, device)
    if fmt == Format.csv:
        fail("a model page holds several tables: --format json prints them all, --format csv one (harness report)")
    show(console, fmt, *(t for t in found.tables.values() if t.rows or fmt == Format.json))


@show_app.command("run")
def show_run(run_id: int = typer.Argument(..., help="a run's id (harness report lists them)"), db: DbOption = None,
             fmt: FormatOption = Format.table):
    """One run in full: every stored field, its host, its largest ops, its samples in order (the dashboard's
    /run/ID)."""
    from ..views.pages import run_page

    found = run_page(open_db_with_runs(db), run_id)
    if found is None:
        fail(f"no run {run_id} in this database")
    if fmt == Format.csv:
        fail("a run page holds several tables: --format json prints them all")
    show(console, fmt, *(t for t in found.tables.values() if t.rows or fmt == Format.json))


@app.command(rich_help_panel=READ)
def plot(
    out: Path = typer.Option(Path("plots"), "--out", help="directory for the PNG files"),
    model: str = typer.Option("sa12", "--model", help="model of the operator-breakdown figure"),
    device: str = typer.Option("cpu", "--device", help="device of the operator-breakdown figure"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to show (baselines: their own)"),
    db: DbOption = None,
):
    """Accuracy vs latency per target, latency per backend, latency per device (harness compare as a
    figure) and an operator breakdown, as PNGs."""
    from ..views.pages import plots

    name = checked(canonical_model, model)
    engine = open_db_with_runs(db)
    out.mkdir(parents=True, exist_ok=True)
    for path in plots(engine, out, name, own_resolution(resolution), device):
        console.print(escape(str(path)))


@app.command(rich_help_panel=READ)
def findings(
    out_dir: Path = typer.Option(Path("docs"), "--out-dir", help="writes findings-<cpu>.md here"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to report (baselines: their own)"),
    db: DbOption = None,
):
    """Write a markdown summary of this database: latencies, the claims' verdicts, where time goes."""
    from ..views.findings import render

    text, slug = checked(render, open_db_with_runs(db), own_resolution(resolution))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"findings-{slug}.md"
    path.write_text(text)
    console.print(escape(str(path)))


@app.command(rich_help_panel=READ)
def claims(db: DbOption = None, kind: Optional[ClaimKind] = typer.Option(
        None, "--kind", help="latency (per target and protocol, from runs) or size (counted parameters and MACs); "
        "default: both as tables, latency as json/csv"), fmt: FormatOption = Format.table):
    """Re-check the paper's claims: speed on every target and protocol that has the runs, with intervals and
    verdicts; size and FLOPs from counted parameters and MACs."""
    from ..analysis.claims import check_all
    from ..analysis.size_claims import check_sizes
    from ..views.claims import claims_table, size_claims_table

    if kind == ClaimKind.size:
        return show(console, fmt, size_claims_table(checked(check_sizes)))
    show(console, fmt, claims_table(check_all(open_db_with_runs(db))))
    if kind is None and fmt == Format.table:
        show(console, fmt, size_claims_table(checked(check_sizes)))


@app.command("report", rich_help_panel=READ)
def report_command(
    db: DbOption = None,
    baseline: str = typer.Option("torch/cpu", "--baseline", help="target the speedup column is relative to"),
    model: list[str] = typer.Option(None, "--model"),
    fmt: FormatOption = Format.table,
):
    """Latest run per model spec and target: median, p90, spread, speedup against --baseline."""
    from ..analysis.runs import latest
    from ..views.runs import runs_table

    models = [checked(canonical_model, m) for m in model] if model else None
    found = latest(open_db_with_runs(db), baseline, models)
    if not found:
        fail(f"no runs of {', '.join(models)} yet; `harness run --device cpu --model {models[0]}` makes some")
    show(console, fmt, runs_table(found, f"latest runs (speedup vs {baseline})"))


@app.command("compare", rich_help_panel=READ)
def compare_command(
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to compare (baselines: their own)"),
    metric: CompareMetric = typer.Option(CompareMetric.latency, "--metric", help="latency (with the claims), load "
                                         "time, the model's own peak memory, or the artifact's size"),
    with_predictions: bool = typer.Option(False, "--predicted", help="fill a FastViT model a target has no run of "
                                          "with `harness predict`'s estimate where a predictor was fitted for it, "
                                          "marked predicted (latency only; no speedup uses it)"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Every model's latency (or load time, memory, size) on every device and target (measured, imported,
    published) side by side, and per device the paper's claims as speedups beside the paper's figures."""
    from ..analysis.compare import compare
    from ..analysis.predict import add_predictions
    from ..views.compare import compare_table

    if with_predictions and metric != CompareMetric.latency:
        fail(f"--predicted fills latencies only; predictors estimate no {metric.value}")
    engine = open_db_with_runs(db)
    found = compare(engine, own_resolution(resolution), metric.value)
    if with_predictions:
        add_predictions(engine, found, own_resolution(resolution))
    if not found.models:
        if metric != CompareMetric.latency:
            fail(f"no valid fused-form run at {resolution}px records {metric.value} figures yet; runs of this harness "
                 "from now on do (`harness run --device cpu`), and imported logs that print them")
        fail(f"no valid fused-form runs at batch 1 at {resolution}px yet; `harness run --device cpu` or "
             "`harness published` stores some")
    show(console, fmt, compare_table(found), *(record_tables(engine) if fmt == Format.table and metric ==
                                                CompareMetric.latency else ()))


def record_tables(engine) -> list:
    """The claims on every device with numbers, at every batch and form (the matrix above holds batch 1, fused),
    where some were published or imported."""
    from ..analysis.claims import check_all
    from ..analysis.record import record
    from ..views.claims import record_table

    checks = check_all(engine)
    return [record_table(record(checks))] if any(c.origin != "measured" for c in checks) else []


@app.command(rich_help_panel=READ)
def query(
    sql: str = typer.Argument(..., help="one SQL statement; the database refuses writes"),
    db: DbOption = None,
    timeout: float = typer.Option(store.QUERY_TIMEOUT_S, "--timeout", min=0.001,
                                  help="stop the statement after this many seconds"),
    fmt: FormatOption = Format.table,
):
    """Run read-only SQL over the results (tables runs, samples, hosts, sweeps, op_profiles; views
    latest_valid_runs, reparam_speedup, roofline, roofline_by_class)."""
    if not sql.strip():
        fail("give one SQL statement, e.g. harness query \"SELECT model, target, median_ms FROM latest_valid_runs\"")
    engine = open_db(db)
    try:
        columns, rows = store.read_only_query(engine, sql, timeout)
    except store.QueryError as exc:
        fail(str(exc))
    show(console, fmt, listings.query_table(columns, rows))


@app.command(rich_help_panel=READ)
def serve(
    db: DbOption = None,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (default: this machine only)"),
    port: int = typer.Option(8050, "--port", min=0, max=65535, help="port (0: any free one)"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution the overview shows by default"),
):
    """The results as a read-only web dashboard: overview, claims, models, runs, history, lab. Each page reads
    the database when it loads, so a sweep writing into it shows on the next load; each answers as JSON too."""
    try:
        from ..web.server import EXPOSED, is_loopback, make_server
    except ImportError as exc:
        fail(f"harness serve needs the web extra ({exc.name} is missing): pip install 'fastvit-harness[web]'")
    try:
        engine = store.open_reader(db)
    except store.StorageError as exc:
        fail(str(exc))
    try:
        server = make_server(engine, host, port, resolution)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    if not is_loopback(host):
        err.print(f"[yellow]warning:[/yellow] {escape(EXPOSED.format(host=host, port=server.effective_port))}")
    where = f"[{server.effective_host}]" if ":" in str(server.effective_host) else server.effective_host
    console.print(f"serving {escape(store.database_url(db))} (read-only) at "
                  f"http://{where}:{server.effective_port}/ (Ctrl-C stops)", soft_wrap=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
