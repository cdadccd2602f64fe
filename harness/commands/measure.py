"""The measuring verbs: `run` (here or on a lab), `layers`, `peak`, `coverage`, `export`, and what a machine
offers (`devices`, `doctor`)."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

import fastvit
from backends import BACKENDS

from ..baselines import own_resolution
from ..measure import artifacts, plan, sweep
from ..measure import targets as device_targets
from ..measure.child import WorkerPerTarget
from ..measure.recipe import keep_float_recipe
from ..protocol import LAYER_POLICY, LOW_PRECISIONS, MAX_OTHER_CPU, MAX_STEAL, TimingPolicy
from ..spec import Form, ModelSpec, Precision, Target, canonical_model
from ..store import recipe_label
from ..views import listings
from ..views.serialize import Format
from ..views.terminal import JobProgress, show, skipped
from .common import (MEASURE, BackendName, BackendsOption, CacheOption, CalibrationOption, CompileMode, DbOption,
                     Delegate, DelegateOption, DeviceOption, FormatOption, FormOption, KeepFloatOption, SweepProtocol,
                     ThreadsOption,
                     checked, command_line, console, device_and_threads, err, fail, finished, names, open_db,
                     open_db_for_runs, open_db_with_runs, planned, repeat_policy, single_form)

app = typer.Typer()


@app.command(rich_help_panel=MEASURE)
def run(
    device: DeviceOption,
    backend: BackendsOption = None,
    model: list[str] = typer.Option(None, "--model", help=f"FastViT variant, baseline or timm:<name> "
                                                         f"(repeatable; default {' '.join(plan.DEFAULT_MODELS)})"),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="square input size, a multiple of 32 "
                                             "(default: FastViT 256, baselines 224, as the paper compared them)"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: FormOption = Form.reparam,
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="precision of the exported artifact "
                                        "(int8: each runtime's own post-training quantization, calibrated on photos)"),
    calibration: CalibrationOption = None,
    keep_float: KeepFloatOption = None,
    eval_dir: Optional[Path] = typer.Option(None, "--eval", help="a labelled folder (one sub-folder per class, in "
                                            "the model's class order): top-1 accuracy of every run, with --weights"),
    weights: str = typer.Option("random:0", "--weights", help="random:<seed> or a checkpoint file"),
    delegate: DelegateOption = Delegate.xnnpack,
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
                                help="after timing, profile up to N inferences per op into op_profiles (a slow "
                                "model: about 1 s of them, at least 3; 0: off)"),
    max_other_cpu: float = typer.Option(MAX_OTHER_CPU, "--max-other-cpu", min=0.0,
                                        help="mark a run noisy past this many cores' worth of other processes' work"),
    max_steal: float = typer.Option(MAX_STEAL, "--max-steal", min=0.0,
                                    help="mark a run noisy past this many cores' worth of hypervisor steal"),
    strict: int = typer.Option(0, "--strict", min=0, help="re-time a noisy run in a fresh process up to N times"),
    kept_workers: bool = typer.Option(True, "--kept-workers/--fresh-workers", help="one kept worker process per "
                                      "target runs all its models, its heap given back between them (new workers "
                                      "each repetition); --fresh-workers: every job in a process of its own, about "
                                      "twice as slow a warm sweep"),
    cold_compile: bool = typer.Option(False, "--cold-compile", help="torch.compile: compile cold again (measured "
                                      "once per model, versions and mode, then kept and reused, marked so)"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="AI Hub: submit again a job kept as the model's "
                                      "own failure (a compile the service refused), which a rerun otherwise reports "
                                      "without paying"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="a lab's scheduler (tcp://HOST:PORT): run on "
                                          "every agent that has DEVICE instead of here"),
    agent: list[str] = typer.Option(None, "--agent", help="with --cluster: only these agents (repeatable)"),
    db: DbOption = None,
    cache: CacheOption = plan.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Time every available target of DEVICE for the chosen models; store each run as it ends."""
    device, threads = device_and_threads(device, threads)
    precision, specs = checked(plan.model_specs, model, resolution, batch, form, weights, precision,
                               protocol.value if protocol else None, device)
    checked(plan.check, specs, cache, precision.value, calibration, eval_dir)
    recipe = checked(keep_float_recipe, keep_float, precision.value)
    settings = plan.JobSettings(threads, TimingPolicy(warmup, warmup_time, min_iterations, min_time), cache, profile,
                                max_other_cpu, max_steal, calibration, eval_dir, retry_failed, cold_compile, recipe)
    mode = compile_mode.value if compile_mode else None
    repeat = repeat_policy(repeats, tolerance, max_repeats)
    if cluster and recipe:
        fail("--keep-float runs on this machine only for now: a lab agent plans its targets without the recipe")
    if cluster:
        return run_on_cluster(cluster, agent, device, names(backend), precision.value, delegate.value, mode, specs,
                              settings, repeat, db, fmt)
    if agent:
        fail("--agent needs --cluster")
    if device.startswith("aihub:"):  # without the client or a token no farm target can run: say how, once
        from backends.aihub import client_reason

        if reason := client_reason():
            fail(reason)
    found = planned(plan.plan(specs, device, names(backend), precision.value, settings, delegate.value, mode), device)
    if device.startswith("aihub:") and (repeat.count or repeat.window) > 1:
        err.print(f"--repeats on {escape(device)}: each repetition is an inference job of its own on the device (a new "
                  "measurement, paid for); the compile job is shared")
    engine = open_db_for_runs(db)
    took = sweep.expected_seconds(engine, found.jobs)
    rounds = repeat.count or repeat.window
    with JobProgress(err, {"sweep": len(found.jobs) * rounds}, lambda job: took.get(sweep.job_key(job)),
                     found.jobs, rounds) as progress, (WorkerPerTarget() if kept_workers else nullcontext()) as kept:
        outcome = sweep.run_sweep(engine, found.jobs, command_line(), on_start=progress.started,
                                  on_done=progress.done, strict=strict, repeats=repeat, measure=kept)
    show_runs(engine, outcome.run_ids, f"sweep {outcome.sweep_id}", fmt)
    finished(outcome.statuses, "runs")


def show_runs(engine, run_ids: list[int], title: str, fmt: Format) -> None:
    from ..analysis.runs import by_id
    from ..views.runs import runs_table

    show(console, fmt, runs_table(by_id(engine, run_ids, "torch/cpu"), title))


def run_on_cluster(address: str, only: list[str] | None, device: str, backends: list[str] | None, precision: str,
                   delegate: str, compile_mode: str | None, specs: list[ModelSpec], settings: plan.JobSettings,
                   repeat: sweep.Repeats, db: Optional[str], fmt: Format) -> None:
    """`harness run --cluster`: plan on each agent, run there, store here. The --calibration and --eval folders
    must be at the same path on each agent."""
    from ..lab import controller

    try:
        client = controller.connect(address)
    except controller.ClusterError as exc:
        fail(str(exc))
    with client:
        try:
            found = controller.agents(client, only)
            per_agent = controller.plan(client, found, device, backends, precision, delegate, compile_mode)
        except controller.ClusterError as exc:
            fail(str(exc))
        jobs = {}
        for name, targets in per_agent.items():
            agent_plan = planned(plan.plan(specs, device, backends, precision, settings, targets=targets), device,
                                 f"on agent {name}: ")
            if agent_plan.jobs:
                jobs[name] = agent_plan.jobs
        engine = open_db_for_runs(db)
        with JobProgress(err, {name: len(j) * (repeat.count or repeat.window) for name, j in jobs.items()}) as bars:
            outcome = controller.run_cluster_sweep(
                engine, client, found, jobs, command_line(), repeats=repeat,
                on_done=lambda name, job, result: bars.done(job, result, name),
                warn=lambda message: err.print(f"[yellow]warning:[/yellow] {escape(message)}"))
    show_runs(engine, outcome.run_ids, f"sweep {outcome.sweep_id}", fmt)
    finished(outcome.statuses, "runs")


@app.command(rich_help_panel=MEASURE)
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
        return show(console, fmt, listings.farm_devices_table(found))
    if not cluster:
        return show(console, fmt, listings.devices_table(device_targets.target_status()))
    from ..lab import controller

    try:
        with controller.connect(cluster) as client:
            found = controller.statuses(client, controller.agents(client))
    except controller.ClusterError as exc:
        fail(str(exc))
    show(console, fmt, listings.lab_devices_table(found))


@app.command(rich_help_panel=MEASURE)
def doctor(window: float = typer.Option(0.5, "--window", min=0.1, max=30.0, help="seconds to watch other CPU use"),
           fmt: FormatOption = Format.table):
    """What on this machine will move numbers (governor, turbo, SMT, load, steal, thermal, ISA, phones), with advice."""
    from ..measure.doctor import checks

    show(console, fmt, listings.doctor_table(checks(window)))


@app.command(rich_help_panel=MEASURE)
def export(
    model: str = typer.Option(..., "--model"),
    backend: BackendName = typer.Option(..., "--backend"),
    resolution: int = typer.Option(256, "--resolution"),
    batch: int = typer.Option(1, "--batch", min=1),
    form: FormOption = Form.reparam,
    precision: Precision = typer.Option(Precision.fp32, "--precision"),
    calibration: CalibrationOption = None,
    keep_float: KeepFloatOption = None,
    weights: str = typer.Option("random:0", "--weights"),
    cache: CacheOption = plan.DEFAULT_CACHE,
):
    """Write (or find in the cache) a backend's artifact and print its path."""
    from ..measure.images import ImageSetError, calibration_set

    try:
        spec = ModelSpec(model, resolution, batch, single_form(form, "export"), weights)
        plan.check([spec], cache, precision.value, calibration)
        recipe = keep_float_recipe(keep_float, precision.value)
        images = calibration_set(spec.resolution, calibration) if precision.value in LOW_PRECISIONS else None
        path, cached = artifacts.spec_artifact(spec, BACKENDS[backend.value], precision.value, cache, images, recipe)
    except (ValueError, ImageSetError) as exc:
        fail(str(exc))
    except (RuntimeError, ImportError, fastvit.CheckpointError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    err.print("cached" if cached else "exported")
    console.print(escape(str(path.resolve())))


@app.command(rich_help_panel=MEASURE)
def peak(
    device: DeviceOption = "cpu",
    threads: ThreadsOption = None,
    size: int = typer.Option(1024, "--size", min=64, help="GEMM size N: (N x N) @ (N x N)"),
    backend: BackendsOption = None,
    db: DbOption = None,
    cache: CacheOption = plan.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Measure each runtime's dense-GEMM GFLOP/s on this host (the roofline's roof) and store it."""
    device, threads = device_and_threads(device, threads)
    targets = device_targets.local_targets(device_targets.plan_targets(device, names(backend))[0])
    if not targets:
        fail(f"no available local target on device {device!r}; see `harness devices`")
    outcomes = sweep.measure_peaks(open_db(db, create=True), targets, threads, size, cache)
    show(console, fmt, listings.peaks_table(outcomes, size, threads))
    finished([result.status for _, result in outcomes], "peak measurements")


@app.command(rich_help_panel=MEASURE)
def coverage(
    model: str = typer.Option(..., "--model"),
    backend: BackendsOption = None,
    resolution: int = typer.Option(256, "--resolution"),
    form: FormOption = Form.reparam,
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="int8: which ops each runtime's "
                                        "quantized artifact computes in int8 and which stay in float"),
    calibration: CalibrationOption = None,
    keep_float: KeepFloatOption = None,
    db: DbOption = None,
    cache: CacheOption = plan.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Which ops each delegate (ExecuTorch's XNNPACK, Core ML) takes into its program and which fall back
    to portable kernels, with their FLOPs; stored in delegation_coverage. With --precision int8: which ops each
    runtime computes in int8, read from its own view of the quantized artifact; stored in precision_coverage.
    Needs no device."""
    from ..analysis.delegation import delegation
    from ..analysis.precision import coverage as precision_coverage
    from ..measure.images import ImageSetError
    from ..views.coverage import (
        delegation_summary_table,
        delegation_table,
        precision_coverage_table,
    )

    low = precision.value in LOW_PRECISIONS
    recipe = checked(keep_float_recipe, keep_float, precision.value)
    chosen, refused = plan.coverage_backends(names(backend), precision.value, recipe)
    for candidate, reason in refused:
        if low:
            skipped(err, Target(candidate.name, candidate.devices[0]), reason)
        else:
            fail(reason)
    if not chosen:
        fail(f"no backend here can export {precision.value}")
    try:
        spec = ModelSpec(model, resolution, 1, single_form(form, "coverage"))
        plan.check([spec], cache, precision.value, calibration)
        engine = open_db(db, create=True)
        sweep.measure_any_coverage(engine, spec, chosen, precision.value, calibration, cache, recipe)
    except (ValueError, ImageSetError) as exc:
        fail(str(exc))
    except (RuntimeError, ImportError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    if low:
        found = [c for c in precision_coverage(engine, spec.model, resolution, spec.form)
                 if c.precision == recipe_label(precision.value, recipe) and c.backend in {b.name for b in chosen}]
        return show(console, fmt, precision_coverage_table(found, spec.model, resolution, spec.form))
    found = delegation(engine, spec.model, resolution, spec.form)
    show(console, fmt, delegation_table(found, spec.model, resolution, spec.form),
         *([delegation_summary_table(found)] if fmt == Format.table else []))


@app.command(rich_help_panel=MEASURE)
def layers(
    device: DeviceOption,
    model: str = typer.Option("t8", "--model", help="FastViT variant or baseline"),
    backend: BackendsOption = None,
    resolution: int = typer.Option(256, "--resolution", help="FastViT resolution (baselines: their own)"),
    threads: ThreadsOption = None,
    warmup: int = typer.Option(LAYER_POLICY.warmup_iterations, "--warmup", min=0),
    warmup_time: float = typer.Option(LAYER_POLICY.warmup_seconds, "--warmup-time", min=0.0),
    min_iterations: int = typer.Option(LAYER_POLICY.min_iterations, "--min-iterations", min=1),
    min_time: float = typer.Option(LAYER_POLICY.min_seconds, "--min-time", min=0.0,
                                   help="minimum timed seconds per layer"),
    max_iterations: int = typer.Option(LAYER_POLICY.max_iterations, "--max-iterations", min=1,
                                       help="stop timing a layer at this many calls, even before --min-time"),
    delegate: DelegateOption = Delegate.xnnpack,
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="each layer exported alone in this "
                                        "precision (int8: calibrated on what it receives inside the model)"),
    calibration: CalibrationOption = None,
    only: Optional[str] = typer.Option(None, "--only", help="only the layers whose signature contains this "
                                       "(e.g. dwconv7x7)"),
    show_only: bool = typer.Option(False, "--show", help="print the stored layer table, time nothing"),
    db: DbOption = None,
    cache: CacheOption = plan.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Time every distinct layer of a model alone on every target of DEVICE (plus each runtime's
    empty-model overhead), store them, and print where each runtime loses time. One worker process per
    target runs all its layers."""
    from ..analysis.layers import layer_table
    from ..measure import layers as layer_split
    from ..measure.child import WorkerPerTarget
    from ..views.layers import layers_table, outliers_table

    name = checked(canonical_model, model)
    spec_resolution = own_resolution(resolution)(name)
    if not show_only:
        device, threads = device_and_threads(device, threads)
        spec = checked(ModelSpec, name, spec_resolution)
        checked(plan.check, [spec], cache, precision.value, calibration)
        found = [layer for layer in layer_split.distinct_layers(spec) if not only or only in layer.signature]
        if not found:
            fail(f"no layer of {name} matches --only {only!r}")
        policy = TimingPolicy(warmup, warmup_time, min_iterations, min_time, LAYER_POLICY.max_seconds, max_iterations)
        settings = plan.JobSettings(threads, policy, cache, calibration=calibration)
        jobs = planned(plan.plan([spec], device, names(backend), precision.value, settings, delegate.value,
                                 layers=found), device).jobs
        engine = open_db(db, create=True)
        with JobProgress(err, {"sweep": len(jobs)}) as progress, WorkerPerTarget() as kept_workers:
            outcome = sweep.run_sweep(engine, jobs, command_line(), on_start=progress.started, on_done=progress.done,
                                      measure=kept_workers)
    else:
        engine = open_db_with_runs(db)
    table = layer_table(engine, name, spec_resolution, "reparam", device, precision.value)
    if not table.rows:
        fail(f"no {precision.value} layer runs of {name} at {spec_resolution}px on {device!r}; `harness layers "
             f"--device {device} --model {model} --precision {precision.value}` makes them")
    show(console, fmt, layers_table(table, name, spec_resolution),
         *([outliers_table(table)] if fmt == Format.table else []))
    if not show_only:
        finished(outcome.statuses, "layer runs")
