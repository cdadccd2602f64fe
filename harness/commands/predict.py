"""`harness predict`: latency predicted from kernels timed alone (`harness predict fit` fits a predictor per
target of a device and stores it; `harness predict --model M --target T` applies the newest one)."""
from __future__ import annotations

import importlib.util

from typing import Optional

import typer

from ..analysis.predict import predicted, predictors, profiled_runs
from ..measure import plan, sweep
from ..measure.child import WorkerPerTarget
from ..measure.environment import host_facts
from ..measure.predict import (METHOD, WHOLE_MODELS, Fitted, WholeModelsApart, calibrate, detect_fusions,
                               fit_target)
from ..measure.targets import local_targets, plan_targets
from ..predict.fit import WHOLE
from ..spec import ModelSpec
from ..store import save_predictor
from ..views.predict import kernels_table, prediction_table, predictors_table
from ..views.serialize import Format
from ..views.terminal import JobProgress, show
from .common import (MEASURE, BackendsOption, CacheOption, DbOption, DeviceOption, FormatOption, ThreadsOption,
                     checked, command_line, console, device_and_threads, err, fail, names, open_db_for_runs,
                     open_db_with_runs)

app = typer.Typer()
predict_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                          help="Predict a model's latency on a target from kernels timed alone; `predict fit` fits.")
app.add_typer(predict_app, name="predict", rich_help_panel=MEASURE)


@predict_app.callback()
def predict(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", help="a FastViT variant or configuration "
                                        "(d2.2.6.2-w64.128.256.512-r3-mmaa)"),
    resolution: int = typer.Option(256, "--resolution", help="square input size"),
    target: Optional[str] = typer.Option(None, "--target", help="e.g. onnxruntime/cpu"),
    threads: ThreadsOption = None,
    list_only: bool = typer.Option(False, "--list", help="list the stored predictors and how well each fits"),
    db: DbOption = None,
    fmt: FormatOption = Format.table,
):
    """Predict MODEL's latency on TARGET with the newest predictor fitted on this host: the value, an interval,
    where the time goes per kernel, and the measured value beside it when a run of the same spec exists. A
    prediction is never stored as a run nor used by any claim."""
    if ctx.invoked_subcommand:
        return
    engine = open_db_with_runs(db)
    if list_only:
        return show(console, fmt, predictors_table(predictors(engine)))
    if not model or not target:
        fail("harness predict needs --model and --target (or --list, or `harness predict fit`)")
    spec = checked(ModelSpec, model, resolution)
    if spec.is_baseline:
        fail(f"{spec.model}: the predictor learns FastViT's building blocks; a baseline has none of them")
    try:
        try:
            found = predicted(engine, spec, target, host_facts(), threads)
        except LookupError:  # a device's target, fitted from its imported profiles (`predict fit --from-profiles`)
            found = predicted(engine, spec, target, None, threads)
    except (LookupError, ValueError) as exc:  # nothing fitted for the target, or not for every kind of kernel
        fail(str(exc))
    show(console, fmt, prediction_table(found), *([kernels_table(found)] if fmt == Format.table else []))


@predict_app.command("fit")
def fit(
    device: DeviceOption = "cpu",
    backend: BackendsOption = None,
    kernels: int = typer.Option(60, "--kernels", min=8, help="kernels timed in the first round (over every kind)"),
    rounds: int = typer.Option(3, "--rounds", min=1, help="rounds: the first samples the design space, each later "
                               "one times kernels beside the worst-predicted ones"),
    seed: int = typer.Option(0, "--seed", help="which kernels the first round samples"),
    whole: int = typer.Option(WHOLE_MODELS, "--whole", min=0, help="whole sampled models timed among the kernels, "
                              "to calibrate the kernels' sum (it misses what a model pays that its kernels alone do "
                              "not); 0: none"),
    calibrate_only: bool = typer.Option(False, "--calibrate-only", help="time no kernels: calibrate the newest fit "
                                        "of each target on --whole whole models, stored as a new predictor"),
    from_runs: bool = typer.Option(False, "--from-runs", help="time nothing: fit each target again, with this "
                                   "version's cost model, from the runs its newest kernel fit on this host rests on "
                                   "(kernels, whole models), stored as a new predictor"),
    threads: ThreadsOption = None,
    from_profiles: Optional[str] = typer.Option(None, "--from-profiles", metavar="TARGET", help="time nothing: fit "
                                                "TARGET (e.g. litert/android:SM-S921B) from the op profiles of whole "
                                                "models stored for it, imported from a device or timed here"),
    host: Optional[str] = typer.Option(None, "--host", help="with --from-profiles: the profiled host's name "
                                       "(default: the host of the newest profile)"),
    db: DbOption = None,
    cache: CacheOption = plan.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Time sampled FastViT building blocks alone on every target of DEVICE this machine runs (one kept worker per
    target), fit a cost model per kernel kind, and store it with its runs. With --from-profiles, fit a coarser
    predictor for a device the harness cannot time kernels on: op-class rates from its whole models' profiles."""
    if from_profiles:
        return fit_from_profiles(from_profiles, host, threads, db, fmt)
    if importlib.util.find_spec("scipy") is None:
        fail("harness predict fit needs scipy (its non-negative least squares): pip install 'fastvit-harness[predict]'")
    device, threads = device_and_threads(device, threads)
    runnable = local_targets(plan_targets(device, names(backend))[0])
    if not runnable:
        fail(f"harness predict fit times kernels on the targets this machine runs itself; device {device!r} offers "
             "none of those here; see `harness devices`")
    engine = open_db_for_runs(db)
    if calibrate_only:
        return calibrate_fits(engine, runnable, whole, seed, threads, cache, fmt)
    if from_runs:
        return refit_fits(engine, runnable, threads, fmt)
    fitted_ids = []
    for target in runnable:
        with JobProgress(err, {"sweep": kernels + 1 + whole}) as progress, WholeModelsApart() as kept:
            run_jobs = stored_job_runner(engine, progress, kept)
            try:
                fitted = fit_target(engine, target, run_jobs, threads=threads, cache_dir=cache, count=kernels,
                                    rounds=rounds, seed=seed, whole=whole)
            except (RuntimeError, ValueError) as exc:
                err.print(f"[yellow]{target.name}: no predictor[/yellow]: {exc}")
                continue
            fusion_runs: list[int] = []

            def run_and_keep(jobs, run_jobs=run_jobs, fusion_runs=fusion_runs):
                done = run_jobs(jobs)
                fusion_runs.extend(run_id for run_id, _ in done)
                return done

            try:  # which compositions this runtime fuses, timed as the kernels were: stored with the fit
                fusions = {c.name: {"fused": c.fused, "saved_ms": c.saved_ms, "saved_share": c.saved_share}
                           for c in detect_fusions(target, run_and_keep, threads=threads, cache_dir=cache)}
            except RuntimeError as exc:  # its empty-model probe failed: the fit stands, without fusion facts
                err.print(f"[yellow]{target.name}: fusion not tested[/yellow]: {exc}")
                fusions = {}
        for signature, why in fitted.failed:
            err.print(f"{target.name}: kernel {signature} not timed ({why})")
        fitted_ids.append(save_fit(engine, fitted, threads, fitted.run_ids + fusion_runs, fusions))
        err.print(f"{target.name}: {len(fitted.samples)} kernels timed in {fitted.seconds / 60:.1f} min")
    if not fitted_ids:
        fail("no target could be fitted")
    show(console, fmt, predictors_table([p for p in predictors(engine) if p.id in fitted_ids]))


def save_fit(engine, fitted: Fitted, threads: int, run_ids: list[int], fusion: dict) -> int:
    """A kernel fit (calibrated or not) stored as a predictor of this host, with the runs it rests on."""
    costs = {kind: {"coef": c.coef, "samples": c.samples, "cv_errors": c.cv_errors} for kind, c in fitted.costs.items()}
    return save_predictor(engine, host=host_facts(), target=fitted.target.name, threads=threads, precision="fp32",
                          method=METHOD, overhead_ms=fitted.overhead_ms, costs=costs, run_ids=run_ids, fusion=fusion)


def stored_job_runner(engine, progress, kept):
    """jobs -> [(run id, result)] in order: each job timed in the target's kept worker and stored as a run."""
    def run_jobs(jobs):
        results = {}

        def done(job, result):
            results[id(job)] = result
            progress.done(job, result)

        outcome = sweep.run_sweep(engine, jobs, command_line(), on_start=progress.started, on_done=done, measure=kept)
        return [(outcome.runs[i][0], results[id(job)]) for i, job in enumerate(jobs)]
    return run_jobs


def newest_kernel_fit(session, target, threads: int, methods: tuple[str, ...], refused: str):
    """The target's newest predictor on this host with `threads` where it is a kernel fit of one of `methods`; None,
    said as `refused` with the command that makes one, where it is not."""
    from ..analysis.predict import latest_predictor

    row = latest_predictor(session, target.name, host_facts(), threads)
    if row is None or row.method not in methods:
        err.print(f"[yellow]{target.name}: {refused}[/yellow]: no kernel fit of it on this host with {threads} "
                  f"threads; `harness predict fit --backend {target.backend}` makes one")
        return None
    return row


def calibrate_fits(engine, targets, whole: int, seed: int, threads: int, cache, fmt: Format) -> None:
    """`predict fit --calibrate-only`: each target's newest kernel fit on this host (with `threads`), calibrated on
    `whole` whole models, stored as a new predictor with its runs and the old fit's."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ..analysis.predict import costs_of
    from ..predict.fit import WHOLE_AT_LEAST
    from ..store import Run

    if whole < WHOLE_AT_LEAST:
        fail(f"--calibrate-only with --whole {whole}: at least {WHOLE_AT_LEAST} whole models are needed to calibrate")
    fitted_ids = []
    for target in targets:
        with Session(engine) as session:
            row = newest_kernel_fit(session, target, threads, (METHOD,), "not calibrated")
            if row is None:
                continue
            fitted = Fitted(target, overhead_ms=row.overhead_ms, costs=costs_of(row), run_ids=list(
                session.scalars(select(Run.id).where(Run.uuid.in_(row.training_runs)))))
            fusion = dict(row.fusion or {})
        with JobProgress(err, {"sweep": whole}) as progress, WorkerPerTarget() as kept:
            calibrate(fitted, stored_job_runner(engine, progress, kept), threads=threads, cache_dir=cache,
                      count=whole, seed=seed)
        for name, why in fitted.failed:
            err.print(f"{target.name}: whole model {name} not timed ({why})")
        if WHOLE not in fitted.costs:
            err.print(f"[yellow]{target.name}: not calibrated[/yellow]: {len(fitted.whole)} of {whole} whole models "
                      "timed")
            continue
        fitted_ids.append(save_fit(engine, fitted, threads, fitted.run_ids, fusion))
    if not fitted_ids:
        fail("no target could be calibrated")
    show(console, fmt, predictors_table([p for p in predictors(engine) if p.id in fitted_ids]))


def refit_fits(engine, targets, threads: int, fmt: Format) -> None:
    """`predict fit --from-runs`: each target's newest kernel fit on this host (with `threads`) fitted again from its
    stored runs by this version's cost model (harness.measure.predict.refit), stored as a new predictor."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ..measure.predict import KERNEL_METHODS, StoredRun, refit
    from ..store import Run

    fitted_ids = []
    for target in targets:
        with Session(engine) as session:
            row = newest_kernel_fit(session, target, threads, KERNEL_METHODS, "not refitted")
            if row is None:
                continue
            runs = [StoredRun(run.id, ModelSpec(run.model, run.resolution, run.batch, run.form, run.weights),
                              run.layer, run.median_ms if run.status == "ok" else None)
                    for run in session.scalars(select(Run).where(Run.uuid.in_(row.training_runs)).order_by(Run.id))]
            overhead_ms, fusion = row.overhead_ms, dict(row.fusion or {})
        try:
            fitted = refit(target, overhead_ms, runs)
        except ValueError as exc:
            err.print(f"[yellow]{target.name}: not refitted[/yellow]: {exc}")
            continue
        for name, why in fitted.failed:
            err.print(f"{target.name}: {name} left out ({why})")
        fitted_ids.append(save_fit(engine, fitted, threads, fitted.run_ids, fusion))
        err.print(f"{target.name}: {len(fitted.samples)} kernels and {len(fitted.whole)} whole models fitted again "
                  f"from predictor {row.id} ({row.method})")
    if not fitted_ids:
        fail("no target could be fitted again")
    show(console, fmt, predictors_table([p for p in predictors(engine) if p.id in fitted_ids]))


def fit_from_profiles(target: str, host: str | None, threads: int | None, db, fmt: Format) -> None:
    """`predict fit --from-profiles`: op-class rates (harness.predict.rates) from the op profiles stored for
    `target`, stored as a predictor of the profiled host."""
    from ..predict import rates

    engine = open_db_with_runs(db)
    found = profiled_runs(engine, target, host, threads=threads)
    if not found:
        fail(f"no valid run on {target}" + (f" on host {host}" if host else "") +
             (f" with {threads} threads" if threads else "") + " holds an op profile: import one "
             "(`harness import`, `harness aihub fetch`) or time one here with `harness run --profile N`")
    used, profiles = [], []
    for run in found:
        try:
            profiles.append(rates.profile_of(run))
        except (ValueError, KeyError) as exc:  # a model this version cannot build
            err.print(f"[yellow]{run.spec.model}@{run.spec.resolution}: left out[/yellow]: {exc}")
            continue
        used.append(run)
    try:
        costs = rates.fit_rates(profiles)
    except ValueError as exc:
        fail(f"{target}: {exc}")
    predictor_id = save_predictor(engine, host=used[-1].host, target=target, threads=used[-1].threads,
                                  precision="fp32", method=rates.METHOD, overhead_ms=0.0,
                                  costs={cls: {"coef": c.coef, "samples": c.samples, "cv_errors": c.cv_errors}
                                         for cls, c in costs.items()},
                                  run_ids=[run.run_id for run in used])
    err.print(f"{target}: op-class rates from {len(used)} profiled model(s) on {used[-1].host['hostname']}")
    show(console, fmt, predictors_table([p for p in predictors(engine) if p.id == predictor_id]))
