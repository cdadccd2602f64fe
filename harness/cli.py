"""`harness`: time FastViT on every runtime of a device, store every sample, read results back."""
from __future__ import annotations

import csv
import io
import json
import os
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

import fastvit
from backends import BACKENDS
from backends.benchmark_model import DELEGATES

from . import baselines, environment, report, storage, sweep
from .spec import FORMS, ModelSpec, canonical_model
from .timing import TimingPolicy

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Time FastViT on every runtime of a device; every run and sample in SQL.")
console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console = Console(width=160)  # a table written to a file or pipe keeps its columns readable
err = Console(stderr=True)

BackendName = Enum("BackendName", {b: b for b in BACKENDS}, type=str)
Form = Enum("Form", {f: f for f in (*FORMS, "both")}, type=str)
Precision = Enum("Precision", {p: p for p in ("fp32", "fp16")}, type=str)
Delegate = Enum("Delegate", {d: d for d in DELEGATES}, type=str)
DEFAULT_MODELS = ["t8", "s12", "sa12"]


def fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def checked_device_and_threads(device: str, threads: Optional[int]) -> tuple[str, int]:
    """A valid --device, and a thread count no larger than the cores this process may use."""
    try:
        device = sweep.check_device(device)
    except ValueError as exc:
        fail(str(exc))
    cores = environment.usable_cores()
    if device.startswith("android"):  # threads run on the phone, not on this host
        return device, threads or 4
    if threads and threads > cores:
        fail(f"--threads {threads} exceeds the {cores} cores this process may use")
    return device, threads or cores


def open_db(db: Optional[str]):
    try:
        return storage.open_engine(db)
    except storage.StorageError as exc:
        fail(str(exc))


DbOption = typer.Option(None, "--db", help="SQLAlchemy URL or SQLite path (default: $HARNESS_DB or ./results.db)")


@app.command()
def run(
    device: str = typer.Option(..., "--device", help=sweep.DEVICE_HELP),
    backend: list[BackendName] = typer.Option(None, "--backend", help="only these backends (repeatable)"),
    model: list[str] = typer.Option(None, "--model", help=f"FastViT variant, baseline or timm:<name> "
                                                         f"(repeatable; default {' '.join(DEFAULT_MODELS)})"),
    resolution: int = typer.Option(256, "--resolution", help="square input size, a multiple of 32"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: Form = typer.Option(Form.reparam, "--form", help="train, reparam, or both"),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="precision of the exported artifact"),
    weights: str = typer.Option("random:0", "--weights", help="random:<seed> or a checkpoint file"),
    delegate: Delegate = typer.Option(Delegate.xnnpack, "--delegate", help="LiteRT delegate on Android phones"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="threads per runtime (default: all cores)"),
    warmup: int = typer.Option(10, "--warmup", min=0, help="minimum warm-up iterations"),
    warmup_time: float = typer.Option(1.0, "--warmup-time", min=0.0, help="minimum warm-up seconds"),
    min_iterations: int = typer.Option(50, "--min-iterations", min=1),
    min_time: float = typer.Option(3.0, "--min-time", min=0.0, help="minimum timed seconds"),
    repeats: int = typer.Option(1, "--repeats", min=1,
                                help="time every job this many times, each in a fresh process, round-robin"),
    profile: int = typer.Option(20, "--profile", min=0,
                                help="after timing, profile N runs per op into op_profiles (0: off)"),
    db: Optional[str] = DbOption,
    cache: Path = typer.Option(sweep.DEFAULT_CACHE, "--cache", help="artifact cache directory"),
):
    """Time every available target of DEVICE for the chosen models; store each run as it ends."""
    device, threads = checked_device_and_threads(device, threads)
    if not weights.startswith("random:") and not Path(weights).is_file():
        fail(f"--weights: no such checkpoint file {weights!r} (or use random:<seed>)")
    forms = FORMS if form.value == "both" else (form.value,)
    try:
        specs = [ModelSpec(m, resolution, batch, f, weights)
                 for m in (model or DEFAULT_MODELS) for f in forms]
        for spec in specs:
            if spec.is_baseline:
                baselines.validate(spec.model)
    except ValueError as exc:
        fail(str(exc))
    targets, skipped = sweep.plan_targets(device, [b.value for b in backend] if backend else None, precision.value,
                                          delegate.value)
    for target, reason in skipped:
        err.print(f"[yellow]skip[/yellow] {target.name}: {reason}")
    if not targets:
        fail(f"no available target on device {device!r}; see `harness devices`")
    policy = TimingPolicy(warmup, warmup_time, min_iterations, min_time)
    engine = open_db(db)
    sweep_id = storage.start_sweep(engine, shlex.join(["harness", *sys.argv[1:]]))
    # Repeats go round-robin over all jobs, so slow drift of the machine hits every job alike.
    jobs = [sweep.Job(s, t, threads, policy, cache, precision.value, profile)
            for _ in range(repeats) for s in specs for t in targets]
    run_ids, status = [], "interrupted"
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err) as progress:
            task = progress.add_task("sweep", total=len(jobs))
            for job in jobs:
                progress.update(task, description=f"{job.spec.model} {job.spec.form} on {job.target.name}")
                result = sweep.execute(engine, sweep_id, job)
                run_ids.append(result["run_id"])
                if result["status"] != "ok":
                    progress.console.print(f"[red]{result['status']}[/red] {job.spec.model} {job.spec.form} "
                                           f"{job.target.name}: {result.get('error')}")
                progress.advance(task)
        status = "finished"
    finally:
        storage.finish_sweep(engine, sweep_id, status)
    console.print(report.runs_table(engine, run_ids, baseline="torch/cpu", title=f"sweep {sweep_id}"))


@app.command()
def devices():
    """List every target with its availability here, and the reason when it is unavailable."""
    table = Table(title="targets")
    for col in ("device", "target", "available", "reason"):
        table.add_column(col)
    for target, reason in sweep.target_status():
        table.add_row(target.device, target.name, "[green]yes[/green]" if reason is None else "[red]no[/red]",
                      reason or "")
    console.print(table)


@app.command()
def models(resolution: int = typer.Option(256, "--resolution")):
    """Variants with params, GMACs (measured) and the paper's figures."""
    table = Table(title=f"FastViT variants at {resolution}x{resolution}")
    for col in ("variant", "params (M)", "GMACs", "paper params (M)", "paper GMACs", "paper top-1", "iPhone 12 Pro ms"):
        table.add_column(col, justify="right")
    try:
        for name in fastvit.list_models():
            c, p = fastvit.count(name, resolution), fastvit.PAPER_TABLE[name]
            table.add_row(name, f"{c.params_train / 1e6:.2f}", f"{c.gmacs:.2f}", f"{p.params_m}", f"{p.gmacs}",
                          f"{p.top1}", f"{p.iphone12pro_ms}")
    except ValueError as exc:
        fail(str(exc))
    console.print(table)


@app.command()
def export(
    model: str = typer.Option(..., "--model"),
    backend: BackendName = typer.Option(..., "--backend"),
    resolution: int = typer.Option(256, "--resolution"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: Form = typer.Option(Form.reparam, "--form"),
    precision: Precision = typer.Option(Precision.fp32, "--precision"),
    weights: str = typer.Option("random:0", "--weights"),
    cache: Path = typer.Option(sweep.DEFAULT_CACHE, "--cache"),
):
    """Write (or find in the cache) a backend's artifact and print its path."""
    from .worker import export_cached

    if form.value == "both":
        fail("--form must be train or reparam for export")
    be = BACKENDS[backend.value]
    if not be.artifact_name:
        fail(f"backend {backend.value!r} runs the torch module directly and has no artifact")
    if precision.value not in be.precisions:
        fail(f"{be.name} exports {', '.join(be.precisions)}, not {precision.value}")
    if be.export_needs_device and (reason := be.unavailable_reason(be.devices[0])):
        fail(f"{be.name} builds its artifact on the device it runs on, and here: {reason}")
    try:
        spec = ModelSpec(model, resolution, batch, form.value, weights)
        import torch

        built = spec.build()
        example = torch.randn(spec.batch, 3, spec.resolution, spec.resolution)
        path, cached = export_cached(spec, be, precision.value, built, example, cache)
    except (ValueError, RuntimeError, ImportError, fastvit.CheckpointError) as exc:
        fail(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc))
    err.print("cached" if cached else "exported")
    console.print(str(path.resolve()))


@app.command("import")
def import_command(
    file: Optional[Path] = typer.Argument(None, help="the tool's log (not needed for --tool manual)"),
    tool: str = typer.Option(..., "--tool", help="benchmark_model, trtexec, benchmark_app or manual"),
    device: str = typer.Option(..., "--device", help="where it ran, e.g. android:pixel7, iphone12pro, rtx2080ti"),
    model: str = typer.Option(..., "--model"),
    resolution: int = typer.Option(256, "--resolution"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: Form = typer.Option(Form.reparam, "--form"),
    precision: Precision = typer.Option(Precision.fp32, "--precision"),
    weights: str = typer.Option("random:0", "--weights", help="what the measured artifact held"),
    backend: Optional[str] = typer.Option(None, "--backend", help="runtime (default: the tool's own)"),
    threads: int = typer.Option(1, "--threads", min=1, help="threads the tool used"),
    export_times: Optional[Path] = typer.Option(None, "--export-times", help="trtexec --exportTimes JSON"),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="with --tool manual: the median"),
    note: Optional[str] = typer.Option(None, "--note", help="where the number comes from"),
    db: Optional[str] = DbOption,
):
    """Store a run measured elsewhere by a vendor tool, marked as imported."""
    from .importers import DEVICE_NAME, TOOL_BACKENDS, ToolOutputError, import_result, imported_host, read_log

    if tool not in TOOL_BACKENDS:
        fail(f"unknown tool {tool!r}; choose one of: {', '.join(TOOL_BACKENDS)}")
    if not DEVICE_NAME.match(device):
        fail(f"device name {device!r} must be 1-64 letters, digits, spaces or . _ : -")
    backend = backend or TOOL_BACKENDS[tool]
    if not backend:
        fail("--tool manual needs --backend (the runtime that produced the number, e.g. coreml)")
    if form.value == "both":
        fail("--form must be train or reparam for an imported run")
    if tool != "manual" and file is None:
        fail(f"--tool {tool} needs the log FILE")
    try:
        spec = ModelSpec(model, resolution, batch, form.value, weights)
        text = read_log(file) if file is not None else None
        times = read_log(export_times) if export_times is not None else None
        result, summary = import_result(tool, text, latency_ms=latency_ms, note=note, export_times=times)
    except (ValueError, ToolOutputError) as exc:
        fail(str(exc))
    engine = open_db(db)
    run_id = storage.save_run(engine, sweep_id=None, host=imported_host(device), spec=spec.as_dict(),
                              target={"backend": backend, "device": device}, threads=threads,
                              precision=precision.value, result=result, summary=summary)
    console.print(report.runs_table(engine, [run_id], baseline="torch/cpu", title=f"imported run {run_id}"))


@app.command()
def peak(
    device: str = typer.Option("cpu", "--device", help=sweep.DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="threads per runtime (default: all cores)"),
    size: int = typer.Option(1024, "--size", min=64, help="GEMM size N: (N x N) @ (N x N)"),
    backend: list[BackendName] = typer.Option(None, "--backend", help="only these backends (repeatable)"),
    db: Optional[str] = DbOption,
    cache: Path = typer.Option(sweep.DEFAULT_CACHE, "--cache"),
):
    """Measure each runtime's dense-GEMM GFLOP/s on this host (the roofline's roof) and store it."""

    device, threads = checked_device_and_threads(device, threads)
    targets, _ = sweep.plan_targets(device, [b.value for b in backend] if backend else None)
    targets = [t for t in targets if not BACKENDS[t.backend].is_remote(t.device)]
    if not targets:
        fail(f"no available local target on device {device!r}; see `harness devices`")
    engine = open_db(db)
    table = Table(title=f"dense GEMM peak, {size}x{size} fp32, {threads} threads")
    for col in ("target", "GFLOP/s", "status"):
        table.add_column(col)
    for target in targets:
        result = sweep.measure_peak(target, threads, size, cache)
        if result.get("status") == "ok":
            storage.save_peak(engine, host=environment.host_facts(), target=target.name, threads=threads,
                              gflops=result["gflops"], gemm_size=size)
            table.add_row(target.name, f"{result['gflops']:.1f}", "[green]stored[/green]")
        else:
            table.add_row(target.name, "—", f"[red]{result.get('status')}[/red]: {result.get('error')}")
    console.print(table)


@app.command()
def explain(
    model: str = typer.Option(..., "--model"),
    device: str = typer.Option("cpu", "--device", help="only targets on this device family or device"),
    resolution: int = typer.Option(256, "--resolution"),
    form: Form = typer.Option(Form.reparam, "--form"),
    db: Optional[str] = DbOption,
    as_json: bool = typer.Option(False, "--json"),
):
    """Where one model's time goes on each target: per-op-class milliseconds and shares."""
    from .explain import breakdown

    try:
        name = canonical_model(model)
    except ValueError as exc:
        fail(str(exc))
    engine = open_db(db)
    targets, table_rows = breakdown(engine, name, resolution, form.value, device)
    if not targets:
        fail(f"no profiled valid run of {name} at {resolution}px ({form.value}) on {device!r}; "
             f"run `harness run --device {device} --model {model}` first")
    if as_json:
        console.print_json(json.dumps({"targets": targets, "rows": table_rows}))
        return
    table = Table(title=f"where {name} ({form.value}, {resolution}px) spends its time, ms per inference (share)")
    table.add_column("op class")
    for t in targets:
        table.add_column(f"{t['target']}\n{t['median_ms']:.2f} ms timed", justify="right")
    for row in table_rows:
        table.add_row(row["op_class"], *[f"{c['ms']:.2f} ({c['share']:.0%})" if c else "—" for c in row["cells"]])
    table.caption = "profiled separately after timing; profilers add overhead, so compare shares across targets"
    console.print(table)


@app.command()
def plot(
    out: Path = typer.Option(Path("plots"), "--out", help="directory for the PNG files"),
    model: str = typer.Option("sa12", "--model", help="model of the operator-breakdown figure"),
    device: str = typer.Option("cpu", "--device", help="device of the operator-breakdown figure"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to show (baselines: 224)"),
    db: Optional[str] = DbOption,
):
    """Accuracy vs latency per target, latency per backend, and an operator breakdown, as PNGs."""
    from . import plots

    engine = open_db(db)
    try:
        name = canonical_model(model)
    except ValueError as exc:
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    resolution_of = own_resolution(resolution)
    written = [plots.accuracy_vs_latency(engine, out, resolution_of),
               plots.latency_by_backend(engine, out, resolution_of),
               plots.op_breakdown(engine, out, name, resolution_of(name), device)]
    for path in written:
        if path:
            console.print(str(path))


@app.command()
def findings(
    out_dir: Path = typer.Option(Path("docs"), "--out-dir", help="writes findings-<cpu>.md here"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to report (baselines: 224)"),
    db: Optional[str] = DbOption,
):
    """Write a markdown summary of this database: latencies, the claims' verdicts, where time goes."""
    from .findings import render

    engine = open_db(db)
    try:
        text, slug = render(engine, own_resolution(resolution))
    except ValueError as exc:
        fail(str(exc))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"findings-{slug}.md"
    path.write_text(text)
    console.print(str(path))


def own_resolution(fastvit_resolution: int = 256):
    """Each model at its own resolution, as the paper compared them: FastViT 256, the baselines 224."""
    return lambda model: 224 if model.startswith("timm:") else fastvit_resolution


@app.command()
def claims(
    db: Optional[str] = DbOption,
    as_json: bool = typer.Option(False, "--json"),
):
    """Re-check the paper's speed claims on every target that has the runs, with intervals and verdicts."""
    from .claims import check_all

    engine = open_db(db)
    checks = check_all(engine)
    if as_json:
        console.print_json(json.dumps([{
            "claim": c.claim.key, "statement": c.claim.statement, "host": c.host, "target": c.target,
            "threads": c.threads, "precision": c.precision, "runs": list(c.runs), "fast_ms": c.fast_ms,
            "slow_ms": c.slow_ms,
            "speedup": c.speedup, "ci95": [c.low, c.high] if c.low is not None else None,
            "paper_mobile": c.claim.paper_mobile, "paper_gpu": c.claim.paper_gpu, "verdict": c.verdict,
        } for c in checks]))
        return
    table = Table(title="the paper's claims, re-checked (speedup = latency of the slower / the faster)")
    for col in ("claim", "target", "thr", "runs", "fast ms", "slow ms", "speedup (95% CI)", "paper mobile",
                "paper GPU", "verdict"):
        table.add_column(col, justify="left" if col in ("claim", "target", "verdict") else "right")
    colours = {"holds": "green", "does not hold": "red", "not enough data": "yellow"}
    for c in checks:
        ci = f" ({c.low:.2f}-{c.high:.2f})" if c.low is not None else ""
        table.add_row(c.claim.key, c.target, str(c.threads or "—"), "{}+{}".format(*c.runs) if c.runs[0] else "—",
                      report.fmt_ms(c.fast_ms), report.fmt_ms(c.slow_ms),
                      f"{c.speedup:.2f}x{ci}" if c.speedup else "—",
                      f"{c.claim.paper_mobile}x" if c.claim.paper_mobile else "—",
                      f"{c.claim.paper_gpu}x" if c.claim.paper_gpu else "—",
                      f"[{colours[c.verdict]}]{c.verdict}[/{colours[c.verdict]}]")
    console.print(table)


class Output(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def emit(columns: list[str], rows: list[tuple], fmt: Output, title: str) -> None:
    if fmt == Output.json:
        console.print_json(json.dumps([dict(zip(columns, r)) for r in rows], default=str))
    elif fmt == Output.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(title=title or None)
        for c in columns:
            table.add_column(str(c))
        for r in rows:
            table.add_row(*["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r])
        console.print(table)


@app.command("report")
def report_command(
    db: Optional[str] = DbOption,
    baseline: str = typer.Option("torch/cpu", "--baseline", help="target the speedup column is relative to"),
    model: list[str] = typer.Option(None, "--model"),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
):
    """Latest run per model spec and target: median, p90, spread, speedup against --baseline."""
    engine = open_db(db)
    try:
        models = [canonical_model(m) for m in model] if model else None
    except ValueError as exc:
        fail(str(exc))
    columns, rows = report.latest_rows(engine, baseline, models)
    fmt = Output.json if as_json else Output.csv if as_csv else Output.table
    if fmt == Output.table:
        console.print(report.rows_table(columns, rows, f"latest runs (speedup vs {baseline})"))
    else:
        emit(columns, rows, fmt, "")


@app.command()
def query(
    sql: str = typer.Argument(..., help="one SQL statement; the database refuses writes"),
    db: Optional[str] = DbOption,
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
):
    """Run read-only SQL over the results (tables runs, samples, hosts, sweeps; views latest_valid_runs,
    reparam_speedup)."""
    engine = open_db(db)
    try:
        columns, rows = storage.read_only_query(engine, sql)
    except DBAPIError as exc:
        message = str(exc.orig)
        if "readonly" in message or "read-only" in message or "read only" in message:
            fail("harness query is read-only; statements that write are refused (the database is unchanged)")
        fail(f"SQL error: {message}")
    emit(columns, rows, Output.json if as_json else Output.csv if as_csv else Output.table, "")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
