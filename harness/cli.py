"""`harness`: time FastViT on every runtime of a device, store every sample, read results back.

This module only parses options, calls into the harness and prints what comes back (report.py
draws everything). Bad input is one sentence on stderr and exit code 2.
"""
from __future__ import annotations

import os
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

import fastvit
from backends import BACKENDS
from backends.benchmark_model import DELEGATES, ToolOutputError

from . import devices as devices_module
from . import report, store
from .baselines import own_resolution
from .measure import artifacts, sweep
from .measure.layers import LAYER_POLICY
from .measure.importers import TOOL_BACKENDS, ImportRequest, import_result, store_import
from .protocol import LOW_PRECISIONS, MAX_OTHER_CPU, MAX_STEAL, TimingPolicy
from .report import Format
from .spec import FORMS, ModelSpec, Target, canonical_model

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Time FastViT on every runtime of a device; every run and sample in SQL.")
console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console = Console(width=200)  # a table written to a file or pipe keeps its columns readable
err = Console(stderr=True)

BackendName = Enum("BackendName", {b: b for b in BACKENDS}, type=str)
Form = Enum("Form", {f: f for f in (*FORMS, "both")}, type=str)
Precision = Enum("Precision", {p: p for p in ("fp32", "fp16", "bf16", "int8")}, type=str)
Delegate = Enum("Delegate", {d: d for d in DELEGATES}, type=str)
CompileMode = Enum("CompileMode", {m: m for m in ("default", "reduce-overhead", "max-autotune")}, type=str)
SweepProtocol = Enum("SweepProtocol", {p: p for p in ("claims", "paper")}, type=str)
CompareMetric = Enum("CompareMetric", {m: m for m in ("latency", "load", "memory", "size")}, type=str)
DEFAULT_MODELS = ["t8", "s12", "sa12"]

# Options several commands share, declared once.
DbOption = Annotated[Optional[str], typer.Option(
    "--db", help="SQLAlchemy URL or SQLite path (default: $HARNESS_DB or ./results.db)")]
FormatOption = Annotated[Format, typer.Option(
    "--format", help="table (rounded, for a terminal), json or csv (every column, unrounded)")]
CacheOption = Annotated[Path, typer.Option("--cache", help="artifact cache directory")]
CalibrationOption = Annotated[Optional[Path], typer.Option(
    "--calibration", help="int8: a folder of images to calibrate on (default: photographs that scikit-image and "
    "matplotlib ship)")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    "--threads", min=1, help="threads per runtime (default: all cores; on a phone, 4)")]


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def open_db(db: Optional[str], create: bool = False):
    """The results database; only commands that store runs (create=True) may create one."""
    try:
        return store.open_engine(db, create=create)
    except store.StorageError as exc:
        fail(str(exc))


NO_RUNS = "no runs yet; `harness run --device cpu` makes some"


def open_db_for_runs(db: Optional[str]):
    """The database a sweep stores into, holding the bundled published figures beside the runs (stored once:
    `harness compare` sets them beside the first sweep without another step)."""
    from . import published as published_numbers

    engine = open_db(db, create=True)
    added = published_numbers.store_bundled(engine)
    if added:
        err.print(f"stored {added} published latencies beside your runs, for `harness compare`: "
                  f"{escape(published_numbers.bundled_summary())}")
    return engine


def open_db_with_runs(db: Optional[str]):
    """The results database of a command that has nothing to show without runs."""
    engine = open_db(db)
    if store.count_runs(engine) == 0:
        fail(NO_RUNS)
    return engine


def finished(outcomes: list[str], what: str) -> None:
    """Exit 1, saying how many, when some of the work did not end ok."""
    failed = [s for s in outcomes if s != "ok"]
    if failed:
        counts = ", ".join(f"{failed.count(s)} {s}" for s in dict.fromkeys(failed))
        err.print(f"[red]{len(failed)} of {len(outcomes)} {what} did not end ok[/red] ({counts})")
        raise typer.Exit(1)


def repeat_policy(repeats: str, tolerance: float, max_repeats: int) -> sweep.Repeats:
    if repeats == "auto":
        return sweep.Repeats(None, tolerance, 3, max(max_repeats, 3))
    if not repeats.isdigit() or int(repeats) < 1:
        fail(f"--repeats takes a whole number of at least 1, or auto; got {repeats!r}")
    return sweep.Repeats(int(repeats))


def protocol_sweep(name: str, device: str, models: list[str] | None, resolution: Optional[int],
                   precision: "Precision", batch: int, form: "Form") -> tuple["Precision", int, list[tuple[str, int]]]:
    """(precision, batch, [(model, resolution)]) of `harness run --protocol NAME` on `device`; ValueError for an
    option the protocol decides itself, or a device the paper timed nothing like."""
    from .analysis.claims import PAPER_PROTOCOLS, claim_models, fabric

    if models or resolution:
        raise ValueError(f"--protocol {name} chooses the models and resolutions itself: drop --model/--resolution")
    if form.value == "train":
        raise ValueError(f"--protocol {name} times the fused (reparam) models the claims compare: drop --form")
    if name == "claims":
        return precision, batch, claim_models()
    paper = PAPER_PROTOCOLS.get(fabric(device) or "")
    if paper is None:
        raise ValueError(f"the paper timed no {device} device; --protocol paper is for --device gpu "
                         f"({PAPER_PROTOCOLS['gpu'].description}) and phones or Macs "
                         f"({PAPER_PROTOCOLS['mobile'].description}); --protocol claims times the same models here")
    asked = [flag for flag, given in (("--precision", precision.value != "fp32"), ("--batch", batch != 1)) if given]
    if asked:
        raise ValueError(f"--protocol paper sets {' and '.join(asked)} itself ({paper.description})")
    return Precision(paper.precision or "fp32"), paper.batch, claim_models(paper.fabric)


def device_and_threads(device: str, threads: Optional[int]) -> tuple[str, int]:
    try:
        device = devices_module.check_device(device)
        return device, devices_module.threads_for(device, threads)
    except ValueError as exc:
        fail(str(exc))


def model_name(model: str) -> str:
    try:
        return canonical_model(model)
    except ValueError as exc:
        fail(str(exc))


def single_form(form: Form, command: str) -> str:
    if form.value == "both":
        fail(f"--form must be train or reparam for {command}")
    return form.value


@app.command()
def run(
    device: str = typer.Option(..., "--device", help=devices_module.DEVICE_HELP),
    backend: list[BackendName] = typer.Option(None, "--backend", help="only these backends (repeatable)"),
    model: list[str] = typer.Option(None, "--model", help=f"FastViT variant, baseline or timm:<name> "
                                                         f"(repeatable; default {' '.join(DEFAULT_MODELS)})"),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="square input size, a multiple of 32 "
                                             "(default: FastViT 256, baselines 224, as the paper compared them)"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: Form = typer.Option(Form.reparam, "--form", help="train, reparam, or both"),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="precision of the exported artifact "
                                        "(int8: each runtime's own post-training quantization, calibrated on photos)"),
    calibration: CalibrationOption = None,
    eval_dir: Optional[Path] = typer.Option(None, "--eval", help="a labelled folder (one sub-folder per class, in "
                                            "the model's class order): top-1 accuracy of every run, with --weights"),
    weights: str = typer.Option("random:0", "--weights", help="random:<seed> or a checkpoint file"),
    delegate: Delegate = typer.Option(Delegate.xnnpack, "--delegate", help="LiteRT delegate on Android phones"),
    compile_mode: Optional[CompileMode] = typer.Option(None, "--compile-mode", help="torch.compile's mode for "
                                                       "torch-compile targets (default: cpu default, gpu "
                                                       "reduce-overhead, which replays CUDA graphs)"),
    protocol: Optional[SweepProtocol] = typer.Option(None, "--protocol", help="claims: every model the paper's "
                                                     "speed claims compare, each at its claim's resolution; paper: "
                                                     "those, timed as the paper timed this device (gpu: fp16, "
                                                     "batch 8; phones and Macs: batch 1)"),
    threads: ThreadsOption = None,
    warmup: int = typer.Option(10, "--warmup", min=0, help="minimum warm-up iterations"),
    warmup_time: float = typer.Option(1.0, "--warmup-time", min=0.0, help="minimum warm-up seconds"),
    min_iterations: int = typer.Option(50, "--min-iterations", min=1),
    min_time: float = typer.Option(3.0, "--min-time", min=0.0, help="minimum timed seconds"),
    repeats: str = typer.Option("1", "--repeats", help="time every job N times, each in a fresh process, "
                                "round-robin; 'auto': until the last 3 processes agree within --tolerance"),
    tolerance: float = typer.Option(0.05, "--tolerance", min=0.0, help="with --repeats auto: (max-min)/median"),
    max_repeats: int = typer.Option(10, "--max-repeats", min=1, help="with --repeats auto: at most this many"),
    profile: int = typer.Option(20, "--profile", min=0,
                                help="after timing, profile N inferences per op into op_profiles (0: off)"),
    max_other_cpu: float = typer.Option(MAX_OTHER_CPU, "--max-other-cpu", min=0.0,
                                        help="mark a run noisy past this many cores' worth of other processes' work"),
    max_steal: float = typer.Option(MAX_STEAL, "--max-steal", min=0.0,
                                    help="mark a run noisy past this many cores' worth of hypervisor steal"),
    strict: int = typer.Option(0, "--strict", min=0, help="re-time a noisy run in a fresh process up to N times"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="a lab's scheduler (tcp://HOST:PORT): run on "
                                          "every agent that has DEVICE instead of here"),
    agent: list[str] = typer.Option(None, "--agent", help="with --cluster: only these agents (repeatable)"),
    db: DbOption = None,
    cache: CacheOption = sweep.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Time every available target of DEVICE for the chosen models; store each run as it ends."""
    device, threads = device_and_threads(device, threads)
    forms = FORMS if form.value == "both" else (form.value,)
    try:
        if protocol:
            precision, batch, chosen = protocol_sweep(protocol.value, device, model, resolution, precision, batch,
                                                      form)
        else:
            chosen = [(m, resolution or own_resolution()(canonical_model(m))) for m in (model or DEFAULT_MODELS)]
        specs = [ModelSpec(m, r, batch, f, weights) for m, r in chosen for f in forms]
        sweep.check_specs(specs)
        sweep.check_cache(cache)
        sweep.check_images(specs, precision.value, calibration, eval_dir)
    except ValueError as exc:
        fail(str(exc))
    policy = TimingPolicy(warmup, warmup_time, min_iterations, min_time)
    repeat = repeat_policy(repeats, tolerance, max_repeats)
    mode = compile_mode.value if compile_mode else None
    if cluster:
        run_on_cluster(cluster, agent, device, [b.value for b in backend] if backend else None, precision.value,
                       delegate.value, specs, threads, policy, profile, max_other_cpu, max_steal, repeat, db, cache,
                       fmt, images=(calibration, eval_dir), compile_mode=mode)
        return
    if agent:
        fail("--agent needs --cluster")
    if device.startswith("aihub:"):  # without the client or a token no farm target can run: say how, once
        from backends.aihub import client_reason

        if reason := client_reason():
            fail(reason)
    targets, skipped = devices_module.plan_targets(device, [b.value for b in backend] if backend else None,
                                                   precision.value, delegate.value, mode)
    for target, reason in skipped:
        report.skipped(err, target, reason)
    if not targets:
        fail(f"no available target on device {device!r}; see `harness devices`")
    jobs = sweep.plan_jobs(specs, targets, threads=threads, cache_dir=cache, precision=precision.value,
                           policy=policy, profile_iterations=profile, max_other_cpu=max_other_cpu, max_steal=max_steal,
                           calibration=calibration, eval_dir=eval_dir)
    engine = open_db_for_runs(db)
    with report.SweepProgress(err, len(jobs) * (repeat.count or repeat.window)) as progress:
        outcome = sweep.run_sweep(engine, jobs, shlex.join(["harness", *sys.argv[1:]]),
                                  on_start=progress.started, on_done=progress.done, strict=strict, repeats=repeat)
    report.show(console, report.runs_listing(engine, outcome.run_ids, "torch/cpu", f"sweep {outcome.sweep_id}"), fmt)
    finished(outcome.statuses, "runs")


def run_on_cluster(address: str, names: list[str] | None, device: str, backends: list[str] | None, precision: str,
                   delegate: str, specs: list[ModelSpec], threads: int, policy: TimingPolicy, profile: int,
                   max_other_cpu: float, max_steal: float, repeat: sweep.Repeats, db: Optional[str], cache: Path,
                   fmt: Format, images: tuple[Optional[Path], Optional[Path]] = (None, None),
                   compile_mode: str | None = None) -> None:
    """`harness run --cluster`: plan on each agent, run there, store here. images: --calibration and --eval
    folders, which each agent must have at the same path."""
    from .lab import controller

    try:
        client = controller.connect(address)
    except controller.ClusterError as exc:
        fail(str(exc))
    with client:
        try:
            found = controller.agents(client, names)
            planned = controller.plan(client, found, device, backends, precision, delegate, compile_mode)
        except controller.ClusterError as exc:
            fail(str(exc))
        jobs = {}
        for name, (targets, skipped) in planned.items():
            for target, reason in skipped:
                report.skipped(err, target, f"on agent {name}: {reason}")
            if targets:
                jobs[name] = sweep.plan_jobs(specs, targets, threads=threads, cache_dir=cache, precision=precision,
                                             policy=policy, profile_iterations=profile, max_other_cpu=max_other_cpu,
                                             max_steal=max_steal, calibration=images[0], eval_dir=images[1])
        engine = open_db_for_runs(db)
        totals = {name: len(j) * (repeat.count or repeat.window) for name, j in jobs.items()}
        with report.LabProgress(err, totals) as progress:
            outcome = controller.run_cluster_sweep(
                engine, client, found, jobs, shlex.join(["harness", *sys.argv[1:]]), on_done=progress.done,
                warn=lambda message: err.print(f"[yellow]warning:[/yellow] {escape(message)}"), repeats=repeat)
    report.show(console, report.runs_listing(engine, outcome.run_ids, "torch/cpu", f"sweep {outcome.sweep_id}"), fmt)
    finished(outcome.statuses, "runs")


@app.command()
def devices(
    cluster: Optional[str] = typer.Option(None, "--cluster", help="list every agent's targets instead of this machine's"),
    aihub: bool = typer.Option(False, "--aihub", help="list Qualcomm AI Hub's devices: chipset, OS, runtimes"),
    fmt: FormatOption = Format.table,
):
    """List every target with its availability here (or on every agent of a lab), and the reason when
    it is unavailable."""
    if aihub:
        from backends.aihub import client_reason, farm_devices

        if reason := client_reason():
            fail(reason)
        try:
            found = farm_devices()
        except Exception as exc:  # the service's own error (network, token refused), in one line
            fail(f"Qualcomm AI Hub did not answer: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
        report.show(console, report.farm_devices_listing(found), fmt)
        return
    if not cluster:
        report.show(console, report.devices_listing(devices_module.target_status()), fmt)
        return
    from .lab import controller

    try:
        with controller.connect(cluster) as client:
            found = controller.statuses(client, controller.agents(client))
    except controller.ClusterError as exc:
        fail(str(exc))
    report.show(console, report.lab_devices_listing(found), fmt)


@app.command()
def agent(
    scheduler: str = typer.Option(..., "--scheduler", help="the lab's scheduler, tcp://HOST:PORT"),
    name: Optional[str] = typer.Option(None, "--name", help="this machine's name in the lab and in the results "
                                       "(default: the hostname)"),
    listen: str = typer.Option("127.0.0.1", "--listen", help="address to listen on; loopback unless the lab "
                               "is on a network (then use TLS, see the README)"),
    cache: CacheOption = sweep.DEFAULT_CACHE,
):
    """Offer this machine's devices to a lab: runs the jobs a `harness run --cluster` sends, one at a time."""
    from .lab import agent as lab_agent
    from .lab import controller

    try:
        sweep.check_cache(cache)
        controller.connect(scheduler).close()  # unreachable: one sentence now, not a retry loop
    except (ValueError, controller.ClusterError) as exc:
        fail(str(exc))
    lab_agent.serve(scheduler, name, cache, listen)


@app.command()
def scheduler(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback unless told otherwise)"),
    port: int = typer.Option(8786, "--port", min=1, max=65535),
    tls: bool = typer.Option(False, "--tls", help="listen on tls:// with the certificates in Dask's configuration"),
):
    """Start a lab's scheduler (Dask's, as `dask scheduler` would); agents and `harness run --cluster` connect to it."""
    from .lab.scheduler import serve

    try:
        serve(host, port, "tls" if tls else "tcp")
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc})")


@app.command()
def doctor(window: float = typer.Option(0.5, "--window", min=0.1, max=30.0, help="seconds to watch other CPU use"),
           fmt: FormatOption = Format.table):
    """What on this machine will move numbers (governor, turbo, SMT, load, steal, thermal, ISA, phones), with advice."""
    from .measure.doctor import checks

    report.show(console, report.doctor_listing(checks(window)), fmt)


@app.command()
def models(resolution: int = typer.Option(256, "--resolution"), fmt: FormatOption = Format.table):
    """Variants with params, GMACs (measured) and the paper's figures."""
    try:
        listing = report.models_listing(resolution)
    except ValueError as exc:
        fail(str(exc))
    report.show(console, listing, fmt)


@app.command()
def export(
    model: str = typer.Option(..., "--model"),
    backend: BackendName = typer.Option(..., "--backend"),
    resolution: int = typer.Option(256, "--resolution"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: Form = typer.Option(Form.reparam, "--form"),
    precision: Precision = typer.Option(Precision.fp32, "--precision"),
    calibration: CalibrationOption = None,
    weights: str = typer.Option("random:0", "--weights"),
    cache: CacheOption = sweep.DEFAULT_CACHE,
):
    """Write (or find in the cache) a backend's artifact and print its path."""
    from .measure.images import ImageSetError, calibration_set

    try:
        spec = ModelSpec(model, resolution, batch, single_form(form, "export"), weights)
        sweep.check_specs([spec])
        sweep.check_cache(cache)
        sweep.check_images([spec], precision.value, calibration, None)
        images = calibration_set(spec.resolution, calibration) if precision.value in LOW_PRECISIONS else None
        path, cached = artifacts.spec_artifact(spec, BACKENDS[backend.value], precision.value, cache, images)
    except (ValueError, ImageSetError) as exc:
        fail(str(exc))
    except (RuntimeError, ImportError, fastvit.CheckpointError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    err.print("cached" if cached else "exported")
    console.print(escape(str(path.resolve())))


@app.command("import")
def import_command(
    files: Optional[list[Path]] = typer.Argument(None, help="the tool's log(s), or a folder of them (not needed for "
                                                     "--tool manual)"),
    tool: str = typer.Option(..., "--tool", help=", ".join(TOOL_BACKENDS)),
    device: str = typer.Option(..., "--device", help="where it ran, e.g. android:pixel7, iphone12pro, rtx2080ti"),
    model: str = typer.Option(..., "--model"),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="default: what the log says, else 256"),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="default: what the log says, else 1"),
    form: Form = typer.Option(Form.reparam, "--form"),
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
    stated = frozenset(name for name, value in (("batch", batch), ("resolution", resolution),
                                                ("precision", precision)) if value is not None)
    try:
        spec = ModelSpec(model, resolution or 256, batch or 1, single_form(form, "import"), weights)
        logs = log_files(files or [])
        requests = [ImportRequest(tool, device, spec, precision.value if precision else "fp32", threads, backend, log,
                                  export_times, latency_ms, note, etrecord, delegation, stated)
                    for log in (logs or [None])]
        if len(requests) == 1:  # one log: read and checked before the database is opened
            imported = [import_result(requests[0])]
    except (ValueError, ToolOutputError) as exc:
        fail(str(exc))
    engine = open_db(db, create=True)
    if len(requests) == 1:
        run_ids = [store_import(engine, imported[0])]
    else:  # a folder of logs: each stored or refused on its own, one line each
        run_ids, outcomes = [], []
        for request in requests:
            try:
                run_ids.append(store_import(engine, import_result(request)))
                outcomes.append("ok")
                err.print(f"stored  {escape(str(request.log_file))}: run {run_ids[-1]}")
            except (ValueError, ToolOutputError) as exc:
                outcomes.append("refused")
                err.print(f"[red]refused[/red] {escape(str(request.log_file))}: {escape(str(exc))}")
    report.show(console, report.runs_listing(engine, run_ids, "torch/cpu", "imported runs"), fmt)
    if len(requests) > 1:
        finished(outcomes, "logs")


def log_files(paths: list[Path]) -> list[Path]:
    """The files named, with each folder replaced by the regular files in it (sorted, not recursive)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            found.append(path)
    return found


@app.command()
def peak(
    device: str = typer.Option("cpu", "--device", help=devices_module.DEVICE_HELP),
    threads: ThreadsOption = None,
    size: int = typer.Option(1024, "--size", min=64, help="GEMM size N: (N x N) @ (N x N)"),
    backend: list[BackendName] = typer.Option(None, "--backend", help="only these backends (repeatable)"),
    db: DbOption = None,
    cache: CacheOption = sweep.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Measure each runtime's dense-GEMM GFLOP/s on this host (the roofline's roof) and store it."""
    device, threads = device_and_threads(device, threads)
    targets, _ = devices_module.plan_targets(device, [b.value for b in backend] if backend else None)
    targets = devices_module.local_targets(targets)
    if not targets:
        fail(f"no available local target on device {device!r}; see `harness devices`")
    outcomes = sweep.measure_peaks(open_db(db, create=True), targets, threads, size, cache)
    report.show(console, report.peaks_listing(outcomes, size, threads), fmt)
    finished([result.status for _, result in outcomes], "peak measurements")


@app.command()
def coverage(
    model: str = typer.Option(..., "--model"),
    backend: list[BackendName] = typer.Option(None, "--backend", help="delegating backends (default: all of them)"),
    resolution: int = typer.Option(256, "--resolution"),
    form: Form = typer.Option(Form.reparam, "--form"),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="int8: which ops each runtime's "
                                        "quantized artifact computes in int8 and which stay in float"),
    calibration: CalibrationOption = None,
    db: DbOption = None,
    cache: CacheOption = sweep.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Which ops each delegate (ExecuTorch's XNNPACK, Core ML) takes into its program and which fall back
    to portable kernels, with their FLOPs; stored in delegation_coverage. With --precision int8: which ops each
    runtime computes in int8, read from its own view of the quantized artifact; stored in precision_coverage.
    Needs no device."""
    if precision.value in LOW_PRECISIONS:
        return precision_coverage_command(model, backend, resolution, form, precision.value, calibration, db, cache,
                                          fmt)
    chosen = [BACKENDS[b.value] for b in backend] if backend else [b for b in BACKENDS.values() if b.partitioner]
    if refused := [b.name for b in chosen if not b.partitioner]:
        fail(f"{', '.join(refused)} run whole graphs themselves; delegation applies to "
             f"{', '.join(b.name for b in BACKENDS.values() if b.partitioner)}")
    try:
        spec = ModelSpec(model, resolution, 1, single_form(form, "coverage"))
        sweep.check_specs([spec])
        sweep.check_cache(cache)
        engine = open_db(db, create=True)
        sweep.measure_coverage(engine, spec, chosen, cache)
    except ValueError as exc:
        fail(str(exc))
    except (RuntimeError, ImportError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    report.show(console, report.coverage_listing(engine, spec.model, resolution, spec.form), fmt)


def precision_coverage_command(model: str, backend: list, resolution: int, form: Form, precision: str,
                               calibration: Optional[Path], db: Optional[str], cache: Path, fmt: Format) -> None:
    """`harness coverage --precision int8`: export (or find) each runtime's quantized artifact, store and show
    which op classes it computes in int8."""
    from .analysis.precision import coverage as precision_coverage
    from .measure.artifacts import check_exportable
    from .measure.images import ImageSetError, calibration_set

    candidates = ([BACKENDS[b.value] for b in backend] if backend
                  else [b for b in BACKENDS.values() if precision in b.precisions])
    chosen = []
    for candidate in candidates:
        try:
            check_exportable(candidate, precision)
            chosen.append(candidate)
        except ValueError as exc:
            report.skipped(err, Target(candidate.name, candidate.devices[0]), str(exc))
    if not chosen:
        fail(f"no backend here can export {precision}")
    try:
        spec = ModelSpec(model, resolution, 1, single_form(form, "coverage"))
        sweep.check_specs([spec])
        sweep.check_cache(cache)
        images = calibration_set(spec.resolution, calibration)
        engine = open_db(db, create=True)
        sweep.measure_precision_coverage(engine, spec, chosen, precision, images, cache)
    except (ValueError, ImageSetError) as exc:
        fail(str(exc))
    except (RuntimeError, ImportError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    found = [c for c in precision_coverage(engine, spec.model, resolution, spec.form)
             if c.precision == precision and c.backend in {b.name for b in chosen}]
    report.show(console, report.precision_coverage_listing(found, spec.model, resolution, spec.form), fmt)


@app.command()
def layers(
    device: str = typer.Option(..., "--device", help=devices_module.DEVICE_HELP),
    model: str = typer.Option("t8", "--model", help="FastViT variant or baseline"),
    backend: list[BackendName] = typer.Option(None, "--backend", help="only these backends (repeatable)"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution (baselines: their own)"),
    threads: ThreadsOption = None,
    warmup: int = typer.Option(LAYER_POLICY.warmup_iterations, "--warmup", min=0),
    warmup_time: float = typer.Option(LAYER_POLICY.warmup_seconds, "--warmup-time", min=0.0),
    min_iterations: int = typer.Option(LAYER_POLICY.min_iterations, "--min-iterations", min=1),
    min_time: float = typer.Option(LAYER_POLICY.min_seconds, "--min-time", min=0.0,
                                   help="minimum timed seconds per layer"),
    max_iterations: int = typer.Option(LAYER_POLICY.max_iterations, "--max-iterations", min=1,
                                       help="stop timing a layer at this many calls, even before --min-time"),
    delegate: Delegate = typer.Option(Delegate.xnnpack, "--delegate", help="LiteRT delegate on Android phones"),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="each layer exported alone in this "
                                        "precision (int8: calibrated on what it receives inside the model)"),
    calibration: CalibrationOption = None,
    only: Optional[str] = typer.Option(None, "--only", help="only the layers whose signature contains this "
                                       "(e.g. dwconv7x7)"),
    show_only: bool = typer.Option(False, "--show", help="print the stored layer table, time nothing"),
    db: DbOption = None,
    cache: CacheOption = sweep.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Time every distinct layer of a model alone on every target of DEVICE (plus each runtime's
    empty-model overhead), store them, and print where each runtime loses time. One worker process per
    target runs all its layers."""
    from .analysis.layers import layer_table
    from .measure import layers as layer_split
    from .measure.child import WorkerPerTarget

    name = model_name(model)
    spec_resolution = own_resolution(resolution)(name)
    if not show_only:
        device, threads = device_and_threads(device, threads)
        try:
            spec = ModelSpec(name, spec_resolution)
            sweep.check_specs([spec])
            sweep.check_cache(cache)
            sweep.check_images([spec], precision.value, calibration, None)
        except ValueError as exc:
            fail(str(exc))
        targets, skipped = devices_module.plan_targets(device, [b.value for b in backend] if backend else None,
                                                       precision.value, delegate.value)
        for target, reason in skipped:
            report.skipped(err, target, reason)
        if not targets:
            fail(f"no available target on device {device!r}; see `harness devices`")
        found = [layer for layer in layer_split.distinct_layers(spec) if not only or only in layer.signature]
        if not found:
            fail(f"no layer of {name} matches --only {only!r}")
        policy = TimingPolicy(warmup, warmup_time, min_iterations, min_time, LAYER_POLICY.max_seconds, max_iterations)
        jobs = sweep.plan_layer_jobs(spec, found, targets, threads=threads, policy=policy, cache_dir=cache,
                                     precision=precision.value, calibration=calibration)
        engine = open_db(db, create=True)
        with report.SweepProgress(err, len(jobs)) as progress, WorkerPerTarget() as kept_workers:
            outcome = sweep.run_sweep(engine, jobs, shlex.join(["harness", *sys.argv[1:]]),
                                      on_start=progress.started, on_done=progress.done, measure=kept_workers)
    else:
        engine = open_db_with_runs(db)
    table = layer_table(engine, name, spec_resolution, "reparam", device, precision.value)
    if not table.rows:
        fail(f"no {precision.value} layer runs of {name} at {spec_resolution}px on {device!r}; `harness layers "
             f"--device {device} --model {model} --precision {precision.value}` makes them")
    report.show(console, report.layers_listing(table, name, spec_resolution), fmt)
    if not show_only:
        finished(outcome.statuses, "layer runs")


@app.command()
def explain(
    model: str = typer.Option(..., "--model"),
    device: str = typer.Option("cpu", "--device", help="only targets on this device family or device"),
    resolution: int = typer.Option(256, "--resolution"),
    form: Form = typer.Option(Form.reparam, "--form"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Where one model's time goes on each target: per-op-class milliseconds and shares."""
    from .analysis.explain import breakdown

    name, form_name = model_name(model), single_form(form, "explain")
    engine = open_db_with_runs(db)
    found = breakdown(engine, name, resolution, form_name, device)
    if not found.targets:
        fail(f"no profiled valid run of {name} at {resolution}px ({form_name}) on {device!r}; "
             f"run `harness run --device {device} --model {model}` first")
    report.show(console, report.explain_listing(found, name, form_name, resolution), fmt)
    from .analysis.layers import layer_table

    layered = layer_table(engine, name, resolution, form_name, device)
    if fmt == Format.table and layered.rows:  # `harness layers` ran too: both views side by side
        report.show(console, report.views_listing(found, layered), fmt)
    delegation = report.coverage_listing(engine, name, resolution, form_name)
    if fmt == Format.table and delegation.rows:  # the delegates' coverage beside it, where any was stored
        report.show(console, delegation, fmt)
    from .analysis.precision import coverage as precision_coverage

    quantized = precision_coverage(engine, name, resolution, form_name)
    if fmt == Format.table and quantized:  # and what int8 artifacts compute in int8
        report.show(console, report.precision_coverage_listing(quantized, name, resolution, form_name), fmt)


@app.command()
def plot(
    out: Path = typer.Option(Path("plots"), "--out", help="directory for the PNG files"),
    model: str = typer.Option("sa12", "--model", help="model of the operator-breakdown figure"),
    device: str = typer.Option("cpu", "--device", help="device of the operator-breakdown figure"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to show (baselines: their own)"),
    db: DbOption = None,
):
    """Accuracy vs latency per target, latency per backend, latency per device (harness compare as a
    figure) and an operator breakdown, as PNGs."""
    from . import plots

    name = model_name(model)
    engine = open_db_with_runs(db)
    out.mkdir(parents=True, exist_ok=True)
    resolution_of = own_resolution(resolution)
    written = [plots.accuracy_vs_latency(engine, out, resolution_of),
               plots.latency_by_backend(engine, out, resolution_of),
               plots.latency_by_device(engine, out, resolution_of),
               plots.op_breakdown(engine, out, name, resolution_of(name), device)]
    for path in written:
        if path:
            console.print(escape(str(path)))


@app.command()
def findings(
    out_dir: Path = typer.Option(Path("docs"), "--out-dir", help="writes findings-<cpu>.md here"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to report (baselines: their own)"),
    db: DbOption = None,
):
    """Write a markdown summary of this database: latencies, the claims' verdicts, where time goes."""
    from .findings import render

    engine = open_db_with_runs(db)
    try:
        text, slug = render(engine, own_resolution(resolution))
    except ValueError as exc:
        fail(str(exc))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"findings-{slug}.md"
    path.write_text(text)
    console.print(escape(str(path)))


ClaimKind = Enum("ClaimKind", {k: k for k in ("latency", "size")}, type=str)


@app.command()
def claims(db: DbOption = None, kind: Optional[ClaimKind] = typer.Option(
        None, "--kind", help="latency (per target and protocol, from runs) or size (counted parameters and MACs); "
        "default: both as tables, latency as json/csv"), fmt: FormatOption = Format.table):
    """Re-check the paper's claims: speed on every target and protocol that has the runs, with intervals and
    verdicts; size and FLOPs from counted parameters and MACs."""
    from .analysis.claims import check_all
    from .analysis.size_claims import check_sizes

    def sizes() -> report.Listing:
        try:
            return report.size_claims_listing(check_sizes())
        except ValueError as exc:
            fail(str(exc))

    if kind == ClaimKind.size:
        report.show(console, sizes(), fmt)
        return
    report.show(console, report.claims_listing(check_all(open_db_with_runs(db))), fmt)
    if kind is None and fmt == Format.table:
        report.show(console, sizes(), fmt)


@app.command("report")
def report_command(
    db: DbOption = None,
    baseline: str = typer.Option("torch/cpu", "--baseline", help="target the speedup column is relative to"),
    model: list[str] = typer.Option(None, "--model"),
    fmt: FormatOption = Format.table,
):
    """Latest run per model spec and target: median, p90, spread, speedup against --baseline."""
    models = [model_name(m) for m in model] if model else None
    listing = report.latest_runs_listing(open_db_with_runs(db), baseline, models)
    if not listing.rows:
        fail(f"no runs of {', '.join(models)} yet; `harness run --device cpu --model {models[0]}` makes some")
    report.show(console, listing, fmt)


@app.command()
def published(
    file: Optional[Path] = typer.Option(None, "--file", help="a table of published latencies in the format of "
                                        "harness/data/published.json (default: the bundled tables)"),
    aihub: bool = typer.Option(False, "--aihub", help="the baselines' Qualcomm AI Hub latencies that qai-hub-models "
                               "ships (its perf.yaml files) instead"),
    aihub_models: Optional[Path] = typer.Option(None, "--aihub-models", help="with --aihub: a qai-hub-models wheel "
                                                "or package folder (default: the installed package)"),
    aihub_device: list[str] = typer.Option(None, "--aihub-device", help="with --aihub: only this AI Hub device "
                                           "(repeatable; default: every device the files hold)"),
    db: DbOption = None,
):
    """Store latencies from papers and model zoos, each with its citation, as runs marked published."""
    from . import published as published_numbers

    aihub = aihub or bool(aihub_models or aihub_device)
    if aihub and file:
        fail("give --file or --aihub, not both")
    try:
        if aihub:
            from . import published_aihub

            tables = published_aihub.tables(aihub_models)
            if aihub_device:
                known = sorted({t.device for t in tables})
                unknown = [d for d in aihub_device if d not in known]
                if unknown:
                    fail(f"no AI Hub figures for {', '.join(unknown)}; the files hold {', '.join(known)}")
                tables = [t for t in tables if t.device in aihub_device]
        else:
            tables = published_numbers.load(file) if file else published_numbers.bundled()
    except ValueError as exc:
        fail(str(exc))
    added, present = published_numbers.store_tables(open_db(db, create=True), tables)
    console.print(f"stored {added} published latencies ({present} already stored) from {len(tables)} table(s):")
    if aihub:  # one job per table: a line per device
        per_device: dict[str, list] = {}
        for table in tables:
            per_device.setdefault(table.device, []).append(table)
        for device, found in per_device.items():
            backends = sorted({t.target.split("/", 1)[0] for t in found})
            console.print(f"  {escape(device)}: {len(found)} ({', '.join(backends)}), {escape(found[0].citation.split(',')[0])}")
        return
    for table in tables:
        console.print(f"  {escape(table.device)} {escape(table.target)}: {escape(table.url)}")


@app.command("compare")
def compare_command(
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution to compare (baselines: their own)"),
    metric: CompareMetric = typer.Option(CompareMetric.latency, "--metric", help="latency (with the claims), load "
                                         "time, the model's own peak memory, or the artifact's size"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Every model's latency (or load time, memory, size) on every device and target (measured, imported,
    published) side by side, and per device the paper's claims as speedups beside the paper's figures."""
    from .analysis.compare import compare

    found = compare(open_db_with_runs(db), own_resolution(resolution), metric.value)
    if not found.models:
        if metric != CompareMetric.latency:
            fail(f"no valid fused-form run at {resolution}px records {metric.value} figures yet; runs of this harness "
                 "from now on do (`harness run --device cpu`), and imported logs that print them")
        fail(f"no valid fused-form runs at batch 1 at {resolution}px yet; `harness run --device cpu` or "
             "`harness published` stores some")
    report.show(console, report.compare_listing(found), fmt)


@app.command()
def merge(
    source: str = typer.Argument(..., help="results database to copy from: a SQLite path or any SQLAlchemy URL"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Copy another results database's runs (samples, op profiles, FLOPs, hosts, sweeps, peaks) into
    this one; a run already here (same UUID) is skipped, so merging twice adds nothing."""
    from .store.merge import merge as merge_databases
    from .store.merge import open_source

    try:
        with open_source(source) as src:
            merged = merge_databases(src, open_db(db, create=True))
    except store.StorageError as exc:
        fail(str(exc))
    report.show(console, report.merged_listing(merged, source), fmt)


@app.command()
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
    report.show(console, report.Listing(columns, rows), fmt)


@app.command()
def serve(
    db: DbOption = None,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (default: this machine only)"),
    port: int = typer.Option(8050, "--port", min=0, max=65535, help="port (0: any free one)"),
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution the overview shows by default"),
):
    """The results as a read-only web dashboard: overview, claims, models, runs, history, lab. Each page reads
    the database when it loads, so a sweep writing into it shows on the next load."""
    try:
        from .web.server import EXPOSED, is_loopback, make_server
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
