"""The verbs that store numbers this harness did not time here: vendor logs (`import`), published tables
(`published`), another database (`merge`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from backends.benchmark_model import ToolOutputError

from .. import store
from ..ingest.logs import TOOL_BACKENDS, ImportRequest
from ..spec import Form, ModelSpec, Precision
from ..views import listings
from ..views.serialize import Format
from ..views.terminal import show
from .common import (INGEST, DbOption, FormatOption, FormOption, checked, console, err, fail, finished, open_db,
                     single_form)
from .measure import show_runs

app = typer.Typer()


@app.command("import", rich_help_panel=INGEST)
def import_command(
    files: Optional[list[Path]] = typer.Argument(None, help="the tool's log(s), or a folder of them (not needed for "
                                                     "--tool manual)"),
    tool: str = typer.Option(..., "--tool", help=", ".join(TOOL_BACKENDS)),
    device: str = typer.Option(..., "--device", help="where it ran, e.g. android:pixel7, iphone12pro, rtx2080ti"),
    model: str = typer.Option(..., "--model"),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="default: what the log says, else 256"),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="default: what the log says, else 1"),
    form: FormOption = Form.reparam,
    precision: Optional[Precision] = typer.Option(None, "--precision", help="default: what the log says, else fp32"),
    weights: str = typer.Option("random:0", "--weights", help="what the measured artifact held"),
    backend: Optional[str] = typer.Option(None, "--backend", help="runtime (default: the tool's own)"),
    threads: int = typer.Option(1, "--threads", min=1, help="threads the tool used"),
    export_times: Optional[Path] = typer.Option(None, "--export-times", help="trtexec --exportTimes JSON"),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="with --tool manual: the median"),
    etrecord: Optional[Path] = typer.Option(None, "--etrecord", help="with --tool etdump: the program's ETRecord"),
    delegation: Optional[Path] = typer.Option(None, "--delegation", help="with --tool etdump: the delegation.json "
                                              "exported beside the .pte (names each operator's layer)"),
    note: Optional[str] = typer.Option(None, "--note", help="where the number comes from"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Store runs measured elsewhere by a vendor tool, marked as imported: one per log file. The batch,
    resolution and precision the log ran are taken from it where you give none."""
    from ..ingest.logs import import_each, import_result, log_files, store_import

    stated = frozenset(name for name, value in (("batch", batch), ("resolution", resolution),
                                                ("precision", precision)) if value is not None)
    try:
        spec = ModelSpec(model, resolution or 256, batch or 1, single_form(form, "import"), weights)
        requests = [ImportRequest(tool, device, spec, precision.value if precision else "fp32", threads, backend, log,
                                  export_times, latency_ms, note, etrecord, delegation, stated)
                    for log in (log_files(files or []) or [None])]
        if len(requests) == 1:  # one log: read and checked before the database is opened
            imported = import_result(requests[0])
    except (ValueError, ToolOutputError) as exc:
        fail(str(exc))
    engine = open_db(db, create=True)
    if len(requests) == 1:
        return show_runs(engine, [store_import(engine, imported)], "imported runs", fmt)
    outcomes = list(import_each(engine, requests))  # a folder: each stored or refused on its own
    for o in outcomes:
        err.print(f"stored  {escape(str(o.request.log_file))}: run {o.run_id}" if o.run_id else
                  f"[red]refused[/red] {escape(str(o.request.log_file))}: {escape(o.refused)}")
    show_runs(engine, [o.run_id for o in outcomes if o.run_id], "imported runs", fmt)
    finished(["ok" if o.run_id else "refused" for o in outcomes], "logs")


@app.command(rich_help_panel=INGEST)
def published(
    file: Optional[Path] = typer.Option(None, "--file", help="a table of published latencies in the format of "
                                        "harness/data/published.json (default: the bundled tables)"),
    aihub: bool = typer.Option(False, "--aihub", help="the baselines' Qualcomm AI Hub latencies that qai-hub-models "
                               "ships (its perf.yaml files) instead"),
    aihub_models: Optional[Path] = typer.Option(None, "--aihub-models", help="with --aihub: a qai-hub-models wheel "
                                                "or package folder (default: the installed package)"),
    aihub_device: list[str] = typer.Option(None, "--aihub-device", help="with --aihub: only this AI Hub device "
                                           "(repeatable; default: every device the files hold)"),
    timm: bool = typer.Option(False, "--timm", help="timm's benchmark tables (results/benchmark-infer-*.csv: "
                              "RTX 3090/4090/5090/Pro 6000 and two desktop CPUs) for every model the claims use, "
                              "each row with the form it timed; the bundled rows of one pinned commit unless "
                              "--timm-results"),
    timm_results: Optional[Path] = typer.Option(None, "--timm-results", help="with --timm: a checkout of "
                                                "huggingface/pytorch-image-models (or its results/ folder)"),
    timm_model: list[str] = typer.Option(None, "--timm-model", help="with --timm: this timm model's rows too "
                                         "(repeatable)"),
    db: DbOption = None,
):
    """Store latencies from papers and model zoos, each with its citation, as runs marked published."""
    from ..ingest import published as published_numbers
    from ..ingest import published_aihub

    aihub = aihub or bool(aihub_models or aihub_device)
    timm = timm or bool(timm_results or timm_model)
    given = [flag for flag, on in (("--file", file is not None), ("--aihub", aihub), ("--timm", timm)) if on]
    if len(given) > 1:
        fail(f"give {' or '.join(given)}, not both" if len(given) == 2 else
             "give one of --file, --aihub and --timm, not all three")
    if timm:
        return published_timm(timm_results, timm_model or [], db)
    if aihub:
        tables = checked(published_aihub.tables, aihub_models, aihub_device)
    else:
        tables = checked(published_numbers.load, file) if file else published_numbers.bundled()
    added, present = published_numbers.store_tables(open_db(db, create=True), tables)
    console.print(f"stored {added} published latencies ({present} already stored) from {len(tables)} table(s):")
    for line in published_numbers.summary(tables, per_device=aihub):
        console.print(f"  {escape(line)}")


def published_timm(folder: Optional[Path], models: list[str], db: Optional[str]) -> None:
    from ..ingest import published_timm as timm_tables

    source = checked(timm_tables.from_folder, folder) if folder else timm_tables.bundled()
    added, present, skipped, files = checked(timm_tables.store, open_db(db, create=True), source, models)
    console.print(f"stored {added} published latencies ({present} already stored) from {files} timm benchmark "
                  f"table(s) at commit {source.commit[:12]}")
    for row in skipped:  # a row whose form could not be established is not stored
        err.print(f"[yellow]not stored[/yellow] {escape(row.model)} in {escape(row.file)}: {escape(row.why)}")


@app.command(rich_help_panel=INGEST)
def merge(
    source: str = typer.Argument(..., help="results database to copy from: a SQLite path or any SQLAlchemy URL"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Copy another results database's runs (samples, op profiles, FLOPs, hosts, sweeps, peaks) into
    this one; a run already here (same UUID) is skipped, so merging twice adds nothing."""
    from ..store.merge import merge as merge_databases
    from ..store.merge import open_source

    try:
        with open_source(source) as src:
            merged = merge_databases(src, open_db(db, create=True))
    except store.StorageError as exc:
        fail(str(exc))
    show(console, fmt, listings.merged_table(merged, source))
