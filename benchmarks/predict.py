"""How well `harness predict` predicts architectures it never saw, per target (issue #37's accuracy table).

Stages, each resumable: the database keeps every run and predictor, so a stopped run goes on where it left off.
  export   the held-out models' artifacts built ahead, --export-workers processes at a time (building times nothing,
           so it may use every core; cold exports were two thirds of the measure stage's time), into the cache the
           measure stage then finds them in.
  measure  the held-out dataset, each model timed whole on each target (a kept worker per target, as `harness run`):
           N FastViT-like configurations sampled from the design space (harness.predict.space, each at a sampled
           resolution) and the seven variants at 256 and 384. A spec with a valid run on this host is skipped;
           --budget-min stops starting new jobs.
  profiles the seven variants at 256 timed whole once more, with an op profile (PROFILE_ITERATIONS inferences),
           as a device the harness cannot time kernels on gives them (an AI Hub job, benchmark_model's op profile).
  noise    the noise floor: K of those models timed again in R fresh processes per target; their between-process
           spread ((max - min) / median) is what no predictor can beat on this machine.
  kernels  the sum-of-kernels baseline's data: every distinct kernel of the paper's variants (at 256 and 384) timed
           alone on each target, twice, a round of all kernels apart (the fastest counts; the fit's runs count
           too). Their sum plus the per-call overhead once is what additivity alone predicts: the error left is
           the interaction between kernels (caches, fusions across blocks), which no per-kernel cost model can
           remove.
  fit      `harness predict fit` per target (kernels timed alone, then --whole sampled models timed whole to
           calibrate their sum; never a held-out model), unless one is stored; a stored fit without the calibration
           gets it (`predict fit --calibrate-only`).
  judge    per target: the share of held-out models predicted within 5 % and 10 % of their measured median, the
           RMSPE, and two baselines: FLOPs only (the fit's kernels' milliseconds per FLOP, one least-squares line
           through the origin, plus the empty-model overhead) and the sum of each model's own kernels timed alone
           (where all of them are: the variants after the kernels stage). And how far a device gets that has only
           whole models' op profiles: op-class rates (harness.predict.rates) from sa12's profile alone and from all
           seven, judged on the held-out models that were not profiled. And the noise floor in the same terms: each
           model timed twice or more, its second timing judged as a prediction of its first (a predictor judged
           against one timing cannot do better than the machine repeats itself).

    python benchmarks/predict.py --db /work/predict-bench.db --count 100 --budget-min 60     (repeat until done)
    python benchmarks/predict.py --db /work/predict-bench.db --stage judge --out predict-accuracy.md

Nothing else should run on the machine meanwhile (it times). Not part of CI.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import or_, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from fastvit import list_models  # noqa: E402
from harness.measure import plan, sweep  # noqa: E402
from harness.measure.child import WorkerPerTarget  # noqa: E402
from harness.measure.environment import host_facts  # noqa: E402
from harness.measure.predict import WHOLE_MODELS  # noqa: E402
from harness.opclass import OVERHEAD_SIGNATURE  # noqa: E402
from harness.predict.space import sample_models  # noqa: E402
from harness.protocol import LAYER_POLICY, Job, TimingPolicy  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402
from harness.store import Host, ModelFlops, OpProfile, Run, Sweep, open_engine  # noqa: E402

TARGETS = ["onnxruntime", "openvino", "litert", "executorch"]
RUN_POLICY = TimingPolicy(warmup_iterations=10, warmup_seconds=1.0, min_iterations=50, min_seconds=3.0)  # harness run's
VARIANT_RESOLUTIONS = (256, 384)
PROFILED_RESOLUTION = 256  # the variants' op profiles a profile-only device is judged from (stage profiles)
PROFILE_ITERATIONS = 20  # `harness run`'s default
ONE_PROFILE = "sa12"  # the single profile: a variant with attention, so every op class has a rate
PROFILES_COMMAND = "benchmarks/predict.py profiles"  # the profiles stage's sweeps: their runs are not the dataset's


def dataset(count: int, seed: int) -> list[ModelSpec]:
    """The held-out models: sampled configurations (at their sampled resolutions), then the paper's variants."""
    sampled = [ModelSpec(config, resolution) for config, resolution in sample_models(count, seed)]
    return sampled + [ModelSpec(v, r) for v in list_models() for r in VARIANT_RESOLUTIONS]


def measured(engine, target: str, threads: int) -> dict[tuple[str, int], list[float]]:
    """(model, resolution) -> the medians of every valid whole-model fp32 run of it on `target` on this host, in the
    order they were timed."""
    host = host_facts()["hostname"]
    found: dict[tuple[str, int], list[float]] = {}
    with Session(engine) as session:
        rows = session.execute(select(Run.model, Run.resolution, Run.median_ms).join(Host).where(
            Host.hostname == host, Run.target == target, Run.threads == threads, Run.status == "ok",
            Run.layer.is_(None), Run.precision == "fp32", Run.form == "reparam", Run.batch == 1,
            Run.published.is_(False), Run.imported.is_(False),
            Run.id.not_in(select(OpProfile.run_id)),  # the profiles stage's runs are not the dataset's, nor are
            or_(Run.sweep_id.is_(None),  # unprofiled ones
                Run.sweep_id.not_in(select(Sweep.id).where(Sweep.command == PROFILES_COMMAND))))
            .order_by(Run.started_at)).all()
    for model, resolution, median in rows:
        found.setdefault((model, resolution), []).append(median)
    return found


def _export_one(spec: ModelSpec, backend: str, cache: str) -> tuple[str, str]:
    """One artifact, in a pool process: (what, how it went)."""
    import torch

    from backends import BACKENDS
    from harness.measure.artifacts import spec_artifact

    torch.set_num_threads(1)  # the pool's processes share the cores
    try:
        _, cached = spec_artifact(spec, BACKENDS[backend], "fp32", Path(cache))
    except Exception as exc:  # noqa: BLE001 - the measure stage records the failure as a run; go on
        return f"{backend} {spec}", f"failed ({type(exc).__name__}: {str(exc)[:120]})"
    return f"{backend} {spec}", "cached" if cached else "exported"


def export_ahead(engine, specs: list[ModelSpec], targets: list[str], threads: int, cache: Path, deadline: float,
                 workers: int) -> int:
    """Build the artifact of every spec not yet timed on a target, `workers` processes at a time; returns how many
    were asked for."""
    from multiprocessing import get_context

    todo = []
    for name in targets:
        have = measured(engine, f"{name}/cpu", threads)
        todo += [(spec, name, str(cache.resolve())) for spec in specs if (spec.model, spec.resolution) not in have]
    if not todo:
        return 0
    # multiprocessing's Pool, not concurrent.futures: on Python 3.11 a ProcessPoolExecutor with max_tasks_per_child
    # hangs once its first workers retire (they are never replaced); fresh workers keep exporters' leaks bounded
    with get_context("spawn").Pool(workers, maxtasksperchild=10) as pool:
        for what, how in pool.imap_unordered(_export_star, todo):
            print(f"  export {what}: {how}", flush=True)
            if time.time() >= deadline:
                pool.terminate()
                break
    return len(todo)


def _export_star(task: tuple) -> tuple[str, str]:
    return _export_one(*task)


def measure(engine, specs: list[ModelSpec], targets: list[str], threads: int, cache: Path, deadline: float,
            repeats: int = 1) -> int:
    """Time each spec whole on each target until it has `repeats` valid runs, one round at a time, each round in
    fresh worker processes (a kept worker per target); returns the jobs run."""
    ran = 0
    for round_number in range(1, repeats + 1):
        jobs = []
        for name in targets:
            have = measured(engine, f"{name}/cpu", threads)
            todo = [s for s in specs if len(have.get((s.model, s.resolution), [])) < round_number]
            jobs += plan.plan_jobs(todo, [Target(name, "cpu")], threads=threads, policy=RUN_POLICY, cache_dir=cache)
        if not jobs or time.time() >= deadline:
            continue
        plan.check_specs(sorted({j.spec for j in jobs}, key=str), cache)
        with WorkerPerTarget() as kept:
            outcome = sweep.run_sweep(engine, jobs, "benchmarks/predict.py measure", measure=kept,
                                      proceed=lambda: time.time() < deadline,
                                      on_done=lambda job, result: print(
                                          f"  {job.describe()}: {result.status} "
                                          f"{result.summary.median_ms if result.summary else ''}", flush=True))
        ran += len(outcome.run_ids)
    return ran


def profile_variants(engine, targets: list[str], threads: int, cache: Path, deadline: float) -> int:
    """The seven variants at PROFILED_RESOLUTION timed whole with an op profile on each target, where they have
    none yet; returns the jobs run."""
    from harness.analysis.predict import profiled_runs

    jobs = []
    for name in targets:
        have = {run.spec.model for run in profiled_runs(engine, f"{name}/cpu", host_facts()["hostname"],
                                                        threads=threads) if run.spec.resolution == PROFILED_RESOLUTION}
        have |= tried_unprofiled(engine, f"{name}/cpu", threads)  # a runtime with no profiler here: tried once
        todo = [ModelSpec(v, PROFILED_RESOLUTION) for v in list_models() if v not in have]
        jobs += plan.plan_jobs(todo, [Target(name, "cpu")], threads=threads, policy=RUN_POLICY, cache_dir=cache,
                               profile_iterations=PROFILE_ITERATIONS)
    if not jobs:
        return 0

    def done(job, result) -> None:
        ops = f"{len(result.op_profile)} ops" if result.op_profile else "no op profile: no profiler here"
        print(f"  {job.describe()}: {result.status} ({ops})", flush=True)

    with WorkerPerTarget() as kept:
        outcome = sweep.run_sweep(engine, jobs, PROFILES_COMMAND, measure=kept, proceed=lambda: time.time() < deadline,
                                  on_done=done)
    return len(outcome.run_ids)


def tried_unprofiled(engine, target: str, threads: int) -> set[str]:
    """The variants the profiles stage timed on `target` on this host and got no op profile of (LiteRT's Python
    interpreter has no profiler: its op profiles come from a device's benchmark_model)."""
    with Session(engine) as session:
        return set(session.scalars(select(Run.model).join(Host).join(Sweep, Sweep.id == Run.sweep_id).where(
            Host.hostname == host_facts()["hostname"], Run.target == target, Run.threads == threads,
            Run.resolution == PROFILED_RESOLUTION, Sweep.command == PROFILES_COMMAND, Run.status == "ok",
            Run.id.not_in(select(OpProfile.run_id)))).all())


def rates_from_profiles(engine, target: str, threads: int, only: str | None = None):
    """Op-class rates (harness.predict.rates) from this host's op profiles of the variants at PROFILED_RESOLUTION
    on `target` (of `only` that variant, where given), and the specs they came from; None without any."""
    from harness.analysis.predict import profiled_runs
    from harness.predict.rates import fit_rates, profile_of

    runs = [run for run in profiled_runs(engine, target, host_facts()["hostname"], threads=threads)
            if run.spec.resolution == PROFILED_RESOLUTION and run.spec.model in list_models()
            and (only is None or run.spec.model == only)]
    if not runs:
        return None, set()
    return fit_rates([profile_of(run) for run in runs]), {(run.spec.model, run.spec.resolution) for run in runs}


KERNEL_TIMINGS = 2  # each kernel of the sum-of-kernels baseline is timed this often, a round of all kernels apart


def kernel_medians(engine, target: str, threads: int) -> dict[str, list[float]]:
    """Kernel signature (Run.layer) -> the medians of its valid runs alone on `target` on this host, the
    empty-model probe (OVERHEAD_SIGNATURE) among them."""
    host = host_facts()["hostname"]
    with Session(engine) as session:
        rows = session.execute(select(Run.layer, Run.median_ms).join(Host).where(
            Host.hostname == host, Run.target == target, Run.threads == threads, Run.status == "ok",
            Run.layer.is_not(None), Run.precision == "fp32", Run.imported.is_(False))).all()
    found: dict[str, list[float]] = {}
    for signature, median in rows:
        found.setdefault(signature, []).append(median)
    return found


def time_kernels(engine, specs: list[ModelSpec], targets: list[str], threads: int, cache: Path,
                 deadline: float) -> int:
    """Each distinct kernel of `specs` timed alone on each target (a kept worker per target) until it has
    KERNEL_TIMINGS valid runs, one round over all kernels at a time: a stretch of seconds in which this VM runs
    slow (up to 2x, even on one thread) then rarely holds both timings of a kernel. Returns the jobs run."""
    from harness.measure.predict import overhead_job
    from harness.predict.kernels import model_kernels

    kernels = {spec: model_kernels(spec) for spec in specs}
    ran = 0
    for timing in range(1, KERNEL_TIMINGS + 1):
        jobs = []
        for name in targets:
            target = Target(name, "cpu")
            timed = {signature: len(medians) for signature, medians in kernel_medians(engine, target.name,
                                                                                       threads).items()}
            if timed.get(OVERHEAD_SIGNATURE, 0) < timing:
                jobs.append(overhead_job(target, threads, cache))
            for spec in specs:
                for kernel in kernels[spec]:
                    if timed.get(kernel.signature, 0) < timing:
                        timed[kernel.signature] = timing
                        jobs.append(Job(spec, target, threads, LAYER_POLICY, str(cache.resolve()), layer=kernel.path,
                                        layer_signature=kernel.signature, layer_count=kernel.count))
        if not jobs or time.time() >= deadline:
            continue
        with WorkerPerTarget() as kept:
            outcome = sweep.run_sweep(engine, jobs, "benchmarks/predict.py kernels", measure=kept,
                                      proceed=lambda: time.time() < deadline,
                                      on_done=lambda job, result: print(f"  {job.describe()}: {result.status}",
                                                                        flush=True))
        ran += len(outcome.run_ids)
    return ran


def sum_of_kernels(spec: ModelSpec, fastest: dict[str, float]) -> float | None:
    """The per-call overhead once plus each of the spec's kernels timed alone, net of the overhead its own timing
    paid, times its count; `fastest` maps a kernel signature to its fastest timing (a slow stretch only adds).
    None unless all of them (and the overhead) were timed."""
    from harness.predict.kernels import model_kernels

    overhead = fastest.get(OVERHEAD_SIGNATURE)
    kernels = model_kernels(spec)
    if overhead is None or any(k.signature not in fastest for k in kernels):
        return None
    return overhead + sum(k.count * max(fastest[k.signature] - overhead, 0.0) for k in kernels)


def fit(engine, db: str, cache: Path, targets: list[str], threads: int, kernels: int, rounds: int,
        refit: bool, whole: int, from_runs: bool = False) -> None:
    from harness.analysis.predict import predictors

    newest = {}
    for p in predictors(engine):  # newest first
        if p.threads == threads and not p.from_profiles:
            newest.setdefault(p.target, p)
    for name in targets:
        found = newest.get(f"{name}/cpu")
        if from_runs:  # this version's cost model on the newest fit's runs: nothing timed
            if not found:
                continue
            how = ["--from-runs"]
        elif found and not refit:
            if found.whole_models or not whole:
                continue
            how = ["--calibrate-only"]
        else:
            how = ["--kernels", str(kernels), "--rounds", str(rounds)]
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "predict", "fit", "--device", "cpu", "--backend", name,
                        *how, "--whole", str(whole), "--threads", str(threads), "--db", db, "--cache", str(cache)],
                       cwd=REPO, check=False)
        print(f"  fit {name} ({' '.join(how)}): {(time.perf_counter() - began) / 60:.1f} min", flush=True)


def calibration_models(whole: int) -> set[tuple[str, int]]:
    """The whole models `predict fit --whole` times (seed 0): never judged, should the sampled sets meet."""
    from harness.measure.predict import WHOLE_SEED

    return set(sample_models(whole, WHOLE_SEED)) if whole else set()


def flops_line(engine, predictor_id: int) -> float | None:
    """Milliseconds per FLOP through the origin, from the predictor's own kernel runs (net of its overhead); None
    without a kernel run that counted its FLOPs."""
    from harness.store import Predictor

    with Session(engine) as session:
        row = session.get(Predictor, predictor_id)
        runs = session.scalars(select(Run).where(Run.uuid.in_(row.training_runs), Run.status == "ok")).all()
        points = [((r.environment or {}).get("layer_flops") or 0, r.median_ms - row.overhead_ms) for r in runs
                  if r.layer not in (None, OVERHEAD_SIGNATURE) and r.median_ms is not None]
    points = [(f, ms) for f, ms in points if f > 0]
    return sum(f * ms for f, ms in points) / sum(f * f for f, _ in points) if points else None


def model_flops(engine, spec: ModelSpec) -> float | None:
    """The spec's FLOPs as its runs stored them (table model_flops)."""
    with Session(engine) as session:
        found = session.scalars(select(ModelFlops.flops).where(
            ModelFlops.model == spec.model, ModelFlops.resolution == spec.resolution, ModelFlops.batch == spec.batch,
            ModelFlops.form == spec.form)).all()
    return float(sum(found)) if found else None


def within(errors: list[float], bound: float) -> float:
    return sum(abs(e) <= bound for e in errors) / len(errors)


def rmspe(errors: list[float]) -> float:
    return math.sqrt(sum(e * e for e in errors) / len(errors))


def judge(engine, specs: list[ModelSpec], targets: list[str], threads: int, details: Path | None = None,
          truth_of=statistics.median, whole: int = 0) -> str:
    """The accuracy table, one row per target; with `details`, every held-out model's numbers as CSV there.
    truth_of: a model's measured latency from the medians of its runs (the median of them, or the fastest).
    whole: how many calibration models the fit timed (none of them is judged)."""
    from harness.analysis.predict import costs_of, latest_predictor, predicted
    from harness.predict.fit import WHOLE, predict
    from harness.predict.kernels import model_kernels
    from harness.predict.rates import predict_rates, spec_features

    calibrated_on = calibration_models(whole)
    if overlap := [s for s in specs if (s.model, s.resolution) in calibrated_on]:
        print(f"  {len(overlap)} held-out models are calibration models too: not judged", flush=True)
        specs = [s for s in specs if s not in overlap]
    lines = ["| target | held-out models | within ±5 % | within ±10 % | RMSPE | kernels alone, uncalibrated ±10 % / "
             "RMSPE | FLOPs-only ±10 % / RMSPE | sum of own kernels ±10 % / RMSPE | noise floor (median spread, max) | "
             "a 2nd timing as the prediction of the 1st: ±10 % / RMSPE | runs timed for the fit | "
             f"op-class rates from {ONE_PROFILE}'s profile ±10 % / RMSPE | from the 7 variants' profiles |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = ["target,model,resolution,measured_ms,predicted_ms,kernels_only_ms,flops_only_ms,sum_of_kernels_ms,"
            "rates_one_profile_ms,rates_seven_profiles_ms"]
    for name in targets:
        target = f"{name}/cpu"
        with Session(engine) as session:
            row = latest_predictor(session, target, host_facts(), threads)  # None: the profile rates alone
            predictor_id, overhead, training = (row.id, row.overhead_ms, len(row.training_runs)) if row else (
                None, None, "no kernel fit")
            kernel_costs = {k: c for k, c in costs_of(row).items() if k != WHOLE} if row else {}
            if row and WHOLE in row.costs:
                training = f"{training} (incl. {row.costs[WHOLE]['samples']} whole models)"
        per_flop = flops_line(engine, predictor_id) if predictor_id else None
        have = measured(engine, target, threads)
        alone = {signature: min(found) for signature, found in kernel_medians(engine, target, threads).items()}
        errors, kernel_errors, flops_errors, sum_errors, spreads, unpredicted = [], [], [], [], [], []
        timings = []  # how many timings each judged model's truth rests on
        retimed = []  # the noise floor in the predictor's own terms: how near a model's 2nd timing comes to its 1st
        by_rates = {label: (*rates_from_profiles(engine, target, threads, only), []) for label, only in
                    (("one", ONE_PROFILE), ("seven", None))}
        for spec in specs:
            medians = have.get((spec.model, spec.resolution))
            if not medians:
                continue
            truth = truth_of(medians)
            timings.append(len(medians))
            if len(medians) > 1:
                spreads.append((max(medians) - min(medians)) / truth)
                retimed.append(medians[1] / medians[0] - 1)
            ms = kernels_only = None
            try:
                if predictor_id:
                    ms = predicted(engine, spec, target, host_facts(), threads).prediction.ms
                    errors.append(ms / truth - 1)
                    kernels_only = predict(kernel_costs, model_kernels(spec), overhead).ms
                    kernel_errors.append(kernels_only / truth - 1)
            except ValueError as exc:  # a kind of kernel the fit has no cost model for
                unpredicted.append(f"{spec.model}@{spec.resolution}: {exc}")
            by_flops = None
            if per_flop is not None and (flops := model_flops(engine, spec)) is not None:
                by_flops = overhead + per_flop * flops
                flops_errors.append(by_flops / truth - 1)
            if (summed := sum_of_kernels(spec, alone)) is not None:
                sum_errors.append(summed / truth - 1)
            from_rates, features = {}, None
            for label, (costs, profiled, rate_errors) in by_rates.items():
                if costs is None or (spec.model, spec.resolution) in profiled:  # judged on models not profiled
                    continue
                features = features or spec_features(spec)  # a forward pass: once per model
                try:
                    from_rates[label] = predict_rates(costs, features).ms
                except ValueError:  # an op class no profile has
                    continue
                rate_errors.append(from_rates[label] / truth - 1)
            rows.append(f"{target},{spec.model},{spec.resolution},{truth:.4f},{'' if ms is None else f'{ms:.4f}'},"
                        f"{'' if kernels_only is None else f'{kernels_only:.4f}'},"
                        f"{'' if by_flops is None else f'{by_flops:.4f}'},{'' if summed is None else f'{summed:.4f}'},"
                        + ",".join(f"{from_rates[k]:.4f}" if k in from_rates else "" for k in ("one", "seven")))
        for why in unpredicted:
            print(f"  {target}: not predicted: {why}", flush=True)
        if not errors and not any(found for *_, found in by_rates.values()):
            lines.append(f"| {target} | none predicted ({len(unpredicted)} measured, not predicted)" + " |" * 12)
            continue
        noise = f"{statistics.median(spreads):.1%}, {max(spreads):.1%} ({len(spreads)} models)" if spreads else "—"
        held_out = f"{len(errors)}" + (f" ({len(unpredicted)} not predicted)" if unpredicted else "") + (
            f", {min(timings)}" + (f"-{max(timings)}" if max(timings) > min(timings) else "") + " timings each")
        fit_cells = (f"{within(errors, 0.05):.0%} | {within(errors, 0.10):.0%} | {rmspe(errors):.1%}" if errors else
                     "— | — | —")
        lines.append(f"| {target} | {held_out} | {fit_cells} | {accuracy(kernel_errors)} | {accuracy(flops_errors)} | "
                     f"{accuracy(sum_errors)} | "
                     f"{noise} | {accuracy(retimed)} | "
                     f"{training} | {accuracy(by_rates['one'][2])} | {accuracy(by_rates['seven'][2])} |")
    if details:
        details.write_text("\n".join(rows) + "\n")
    return "\n".join(lines)


def accuracy(errors: list[float]) -> str:
    """A baseline's cell: within ±10 % and RMSPE, over how many models."""
    return f"{within(errors, 0.10):.0%} / {rmspe(errors):.1%} ({len(errors)})" if errors else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL or path: keep it between sessions")
    parser.add_argument("--cache", type=Path, default=REPO / ".harness-cache")
    parser.add_argument("--stage", action="append",
                        choices=["export", "measure", "profiles", "noise", "kernels", "fit", "judge"],
                        help="default: all, in that order")
    parser.add_argument("--backend", action="append", choices=TARGETS, help=f"default: {' '.join(TARGETS)}")
    parser.add_argument("--count", type=int, default=100, help="sampled architectures (besides the 7 variants)")
    parser.add_argument("--seed", type=int, default=37)
    parser.add_argument("--threads", type=int, default=1, help="1 by default: on this VM two threads run in "
                        "episodes of seconds at 1.0x or 1.7x one thread's speed (README, Prediction), a 40 %% spread "
                        "between processes that no predictor can be judged against")
    parser.add_argument("--export-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timings", type=int, default=1, help="measure: each held-out model timed this often, "
                        "each time in a fresh process")
    parser.add_argument("--truth", choices=["median", "fastest"], default="median", help="judge: a model's measured "
                        "latency is the median of its runs' medians, or the fastest (a slow stretch of this VM only "
                        "adds time)")
    parser.add_argument("--noise-models", type=int, default=10)
    parser.add_argument("--noise-repeats", type=int, default=3)
    parser.add_argument("--kernels", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--refit", action="store_true")
    parser.add_argument("--from-runs", action="store_true", help="fit: each target's newest kernel fit again from its "
                        "stored runs with this version's cost model (`predict fit --from-runs`), nothing timed")
    parser.add_argument("--whole", type=int, default=WHOLE_MODELS, help="fit: whole sampled models timed to calibrate "
                        "each fit (`predict fit --whole`; 0: none); judge: never judged")
    parser.add_argument("--budget-min", type=float, default=float("inf"), help="start no job after this long")
    parser.add_argument("--out", type=Path, help="also write the accuracy table here")
    parser.add_argument("--details", type=Path, help="and every held-out model's measured and predicted ms (CSV)")
    args = parser.parse_args()
    db = args.db if "://" in args.db else f"sqlite:///{Path(args.db).resolve()}"
    stages = args.stage or ["export", "measure", "profiles", "noise", "kernels", "fit", "judge"]
    targets = args.backend or TARGETS
    engine = open_engine(db)
    specs = dataset(args.count, args.seed)
    deadline = time.time() + args.budget_min * 60
    began = time.perf_counter()
    if "export" in stages:  # the fit's calibration models too: their exports are most of what calibrating costs
        ahead = specs + [ModelSpec(m, r) for m, r in sorted(calibration_models(args.whole))]
        asked = export_ahead(engine, ahead, targets, args.threads, args.cache, deadline, args.export_workers)
        print(f"export: {asked} artifacts ({(time.perf_counter() - began) / 60:.1f} min)", flush=True)
    if "measure" in stages:
        ran = measure(engine, specs, targets, args.threads, args.cache, deadline, repeats=args.timings)
        print(f"measure: {ran} runs", flush=True)
    if "profiles" in stages and time.time() < deadline:
        ran = profile_variants(engine, targets, args.threads, args.cache, deadline)
        print(f"profiles: {ran} runs", flush=True)
    if "noise" in stages and time.time() < deadline:
        ran = measure(engine, specs[:args.noise_models], targets, args.threads, args.cache, deadline,
                      repeats=args.noise_repeats)
        print(f"noise: {ran} runs", flush=True)
    if "kernels" in stages and time.time() < deadline:
        variants = [spec for spec in specs if spec.model in list_models()]
        ran = time_kernels(engine, variants, targets, args.threads, args.cache, deadline)
        print(f"kernels: {ran} runs", flush=True)
    if "fit" in stages and time.time() < deadline:
        fit(engine, db, args.cache, targets, args.threads, args.kernels, args.rounds, args.refit, args.whole,
            args.from_runs)
    if "judge" in stages:
        table = judge(engine, specs, targets, args.threads, args.details, min if args.truth == "fastest" else
                      statistics.median, args.whole)
        print(f"\n{len(specs)} held-out models ({args.count} sampled, seed {args.seed}; the 7 variants at "
              f"{' and '.join(map(str, VARIANT_RESOLUTIONS))}), {args.threads} threads:\n{table}")
        if args.out:
            args.out.write_text(table + "\n")
    print(f"took {(time.perf_counter() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
