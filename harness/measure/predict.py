"""`harness predict fit`: per target, time sampled kernels alone (one kept worker per target, as `harness layers`
does), fit a cost model per kernel kind, sample again where the model errs most, and store the fit.

The first round draws kernels the way the design space makes them (harness.predict.sampling); each later round
adds, per kind, kernels beside the ones the fit predicts worst (leave-one-out): half and one and a half times
their width, half and twice their size, the adaptive sampling nn-Meter does around its largest errors. Last, a
few whole models sampled from the design space (a seed of their own) are timed to calibrate the kernels' sum
(harness.predict.fit.WHOLE).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..opclass import OVERHEAD_SIGNATURE
from .child import WorkerPerTarget
from ..predict import fit as cost_models
from ..predict import fusion
from ..predict.sampling import KINDS, Probe, probe, sample_probes
from ..predict.space import sample_models
from ..protocol import COMPOSED, LAYER_POLICY, OVERHEAD, Job, RunResult, TimingPolicy
from ..spec import ModelSpec, Target

# harness.predict.fit's model; a later method gets a new name, old fits stay readable. 2: errors relative to a
# kernel's time as timed, not net of the overhead (1 let a kernel faster than the empty-model probe zero the fit).
# 3: an attention block's score elements as a fifth term (refitted on the same runs, ExecuTorch's attention kernels
# went from 34 % median leave-one-out error to 5 %), and the whole-model correction's kernel calls. 4: the
# correction's form chosen by its whole models' leave-one-out error (fit.WHOLE_FORMS), which are timed in a worker
# of their own (WholeModelsApart)
METHOD = "block-nnls-4"
KERNEL_METHODS = ("block-nnls-2", "block-nnls-3", METHOD)  # kernel fits whose training runs a refit can read again
WORST_PER_KIND = 2  # kernels per kind whose neighbours the next round times
MIN_PER_KIND = 6  # a kind with fewer kernels timed (some failed) gets new ones drawn next round
# whole models timed to calibrate the kernels' sum (`predict fit --whole N`; 0: none). Judged on 114 held-out
# models (benchmarks/predict.py), each target fitted and judged in one hour: kernels alone -> calibrated, within
# 10 %: ONNX Runtime 60 -> 89 % on 24 (77 % on 12, too few to see that its small models want no per-call term),
# OpenVINO 87 -> 89 % on 12, ExecuTorch 65 -> 95 % on 24, LiteRT 47 -> 96 % on 12; about 4 minutes per 24 here
WHOLE_MODELS = 24
WHOLE_SEED = 7919  # theirs, plus the fit's seed: not benchmarks/predict.py's held-out models (seed 37)
# timed as `harness run` times a model (its default policy): what a prediction is set beside
WHOLE_POLICY = TimingPolicy()


@dataclass
class Fitted:
    """One target's fit as it goes: every kernel timed (by signature), the overhead, the cost models."""
    target: Target
    samples: dict[str, cost_models.Sample] = field(default_factory=dict)
    run_ids: list[int] = field(default_factory=list)
    overhead_ms: float | None = None
    costs: dict[str, cost_models.KindCost] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (signature, why)
    seconds: float = 0.0
    whole: list[cost_models.WholeSample] = field(default_factory=list)  # the whole models timed to calibrate


def kernel_job(found: Probe, target: Target, threads: int, cache_dir: Path) -> tuple[Job, object]:
    """(the job that times the probe's kernel alone, the kernel) ."""
    from ..predict.kernels import model_kernels  # torch: a meta-device pass

    kernel = next(k for k in model_kernels(found.spec) if k.path == found.path)
    return Job(found.spec, target, threads, LAYER_POLICY, str(Path(cache_dir).resolve()), layer=found.path,
               layer_signature=kernel.signature, layer_count=1), kernel


def overhead_job(target: Target, threads: int, cache_dir: Path) -> Job:
    return Job(ModelSpec("t8", 64), target, threads, LAYER_POLICY, str(Path(cache_dir).resolve()), layer=OVERHEAD,
               layer_signature=OVERHEAD_SIGNATURE, layer_count=0)


FUSION_PREFIX = "fusion "  # a composition's runs: "fusion NAME: PATH" (harness.predict.fusion)


def fusion_jobs(target: Target, threads: int, cache_dir: Path, names: list[str] | None = None
                ) -> dict[str, tuple[Job, Job, Job]]:
    """Per composition (harness.predict.fusion.PROBES): the jobs that time its first module, its second and both
    as one."""
    unknown = sorted(set(names or []) - set(fusion.PROBES))
    if unknown:
        raise ValueError(f"no composition {', '.join(unknown)}; choose from {', '.join(fusion.PROBES)}")
    found = {}
    for name in names or list(fusion.PROBES):
        probe_ = fusion.PROBES[name]
        found[name] = tuple(Job(probe_.spec, target, threads, LAYER_POLICY, str(Path(cache_dir).resolve()),
                                layer=path, layer_signature=f"{FUSION_PREFIX}{name}: {path}", layer_count=1)
                            for path in (probe_.first, probe_.second, probe_.first + COMPOSED + probe_.second))
    return found


FUSION_TIMINGS = 2  # each composition timed this often, a round of all of them apart; the fastest kept


def detect_fusions(target: Target, run_jobs: Callable[[list[Job]], list[tuple[int, RunResult]]], *, threads: int,
                   cache_dir: Path, names: list[str] | None = None,
                   timings: int = FUSION_TIMINGS) -> list[fusion.Composition]:
    """Time each composition's modules alone and together on `target` (the overhead probe first) and say which
    the runtime fuses. Every job runs `timings` times, a whole round apart, and each keeps its fastest timing: a
    stretch of seconds in which this kind of VM runs slow would otherwise make one module of a trio look dear
    (a 1-thread fit once read conv+BN-ReLU as unfused: together 5.68 ms against the convolution's 2.93 ms).
    A composition whose jobs did not all time is left out."""
    per_name = fusion_jobs(target, threads, cache_dir, names)
    one_round = [overhead_job(target, threads, cache_dir)] + [job for trio in per_name.values() for job in trio]
    results = [result for _, result in run_jobs(one_round * max(timings, 1))]
    fastest = []
    for position in range(len(one_round)):
        timed = [r for r in results[position::len(one_round)] if r.status == "ok" and r.summary is not None]
        fastest.append(min(timed, key=lambda r: r.summary.median_ms) if timed else results[position])
    overhead, rest = fastest[0], fastest[1:]
    if overhead.status != "ok" or overhead.summary is None:
        raise RuntimeError(f"{target.name}: the empty-model probe failed ({overhead.status}: {overhead.error})")
    found = []
    for n, name in enumerate(per_name):
        trio = rest[3 * n: 3 * n + 3]
        if any(r.status != "ok" or r.summary is None for r in trio):
            continue
        first, second, together = (fusion.Timed(r.summary.median_ms, r.summary.median_ci_low_ms,
                                                r.summary.median_ci_high_ms) for r in trio)
        found.append(fusion.Composition(name, first, second, together, overhead.summary.median_ms))
    return found


def neighbours(sample: cost_models.Sample, probes: dict[str, Probe], seed: int) -> list[Probe]:
    """Kernels of the same kind beside a badly predicted one: other widths and sizes around it."""
    from ..predict.kernels import model_kernels

    kernel_probe = probes[sample.signature]
    kernel = next(k for k in model_kernels(kernel_probe.spec) if k.path == kernel_probe.path)
    rng = random.Random(f"{seed}:{sample.signature}")
    width = kernel.channels_out if kernel.kind == "stem" else kernel.channels_in
    ratio = kernel.hidden / kernel.channels_in if kernel.hidden else 3
    found = []
    for w, s in ((width // 2, kernel.size), (width * 3 // 2, kernel.size), (width, kernel.size * 2),
                 (width, max(kernel.size // 2, 1))):
        w = max(4, w // 4 * 4 + (4 * rng.randint(-1, 1) if w > 16 else 0))
        if kernel.kind in ("rep_cpe", "attention_block"):
            w = max(32, w // 32 * 32)
        try:
            found.append(probe(kernel.kind, w, s, ratio if ratio in (3, 4) else 3))
        except ValueError:  # no configuration holds it (e.g. an attention width off the head size)
            continue
    return found


class WholeModelsApart:
    """A fit's way to its workers (the kept-worker protocol of harness.measure.child): kernels, probes and
    compositions in one kept worker per target, the whole models it times to calibrate in another, both new
    every round. Timed in the worker that had just timed kernels, ONNX Runtime's 12 calibration models ran 5 % and
    8.5 % slower (median, two fits) than the same models timed whole minutes apart, as the held-out models are,
    and the correction learned that slowness as the models' own cost (ONNX Runtime's held-out models predicted
    4 % high at the median)."""

    def __init__(self):
        self.kernels, self.models = WorkerPerTarget(), WorkerPerTarget()

    def __call__(self, job: Job, timeout_s: float) -> RunResult:
        return (self.models if job.layer is None else self.kernels)(job, timeout_s)

    def new_round(self) -> None:
        self.kernels.new_round()
        self.models.new_round()

    close = new_round

    def __enter__(self) -> WholeModelsApart:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def whole_jobs(target: Target, threads: int, cache_dir: Path, count: int, seed: int = 0) -> list[Job]:
    """Whole sampled models to calibrate a fit with (WHOLE_SEED + seed), each timed as WHOLE_POLICY says."""
    return [Job(ModelSpec(config, resolution), target, threads, WHOLE_POLICY, str(Path(cache_dir).resolve()))
            for config, resolution in sample_models(count, WHOLE_SEED + seed)]


def interleaved(jobs: list[Job], among: list[Job]) -> list[Job]:
    """`jobs` with `among` spread evenly between them (after the first: an overhead probe leads its round)."""
    before = [min(len(jobs), 1 + (n + 1) * max(len(jobs) - 1, 0) // (len(among) + 1)) for n in range(len(among))]
    mixed = []
    for i in range(len(jobs) + 1):
        mixed.extend(job for slot, job in zip(before, among) if slot == i)
        mixed.extend(jobs[i:i + 1])
    return mixed


def calibrate(fitted: Fitted, run_jobs: Callable[[list[Job]], list[tuple[int, RunResult]]], *, threads: int,
              cache_dir: Path, count: int = WHOLE_MODELS, seed: int = 0) -> None:
    """Time `count` whole models on the fit's target and add the whole-model correction to its costs (kind
    WHOLE), where enough of them timed; a model that failed is listed in fitted.failed."""
    jobs = whole_jobs(fitted.target, threads, cache_dir, count, seed)
    add_calibration(fitted, list(zip(jobs, run_jobs(jobs))))


def add_calibration(fitted: Fitted, timed: list[tuple[Job, tuple[int, RunResult]]]) -> None:
    """The whole-model correction (kind WHOLE) from whole models timed on the fit's target, each against the sum of
    its kernels as the fit's kernel costs predict them."""
    calibrate_on(fitted, [(job.spec, run_id, result.summary.median_ms if result.status == "ok" and result.summary
                           else None, f"{result.status}: {result.error}") for job, (run_id, result) in timed])


def calibrate_on(fitted: Fitted, timed: list[tuple[ModelSpec, int, float | None, str]]) -> None:
    """add_calibration from (spec, run id, median ms or None where it failed, why) per whole model."""
    from ..predict.kernels import model_kernels

    kernel_costs = {kind: cost for kind, cost in fitted.costs.items() if kind != cost_models.WHOLE}
    for spec, run_id, median_ms, why in timed:
        fitted.run_ids.append(run_id)
        if median_ms is None:
            fitted.failed.append((f"{spec.model}@{spec.resolution}", why))
            continue
        kernels = model_kernels(spec)
        try:
            kernel_ms = cost_models.predict(kernel_costs, kernels, fitted.overhead_ms).ms
        except ValueError as exc:  # a kind no kernel of it timed
            fitted.failed.append((f"{spec.model}@{spec.resolution}", str(exc)))
            continue
        fitted.whole.append(cost_models.WholeSample(f"{spec.model}@{spec.resolution}",
                                                    tuple(cost_models.model_terms(kernels)), kernel_ms, median_ms))
    fitted.costs = dict(kernel_costs)
    if len(fitted.whole) >= cost_models.WHOLE_AT_LEAST:
        fitted.costs[cost_models.WHOLE] = cost_models.fit_whole(fitted.whole)


def fit_kinds(samples) -> dict[str, cost_models.KindCost]:
    """A cost model for each kind with at least as many kernels timed as the model has terms; the others wait."""
    samples = list(samples)
    enough = {kind for kind in {s.kind for s in samples}
              if sum(s.kind == kind for s in samples) >= len(cost_models.TERMS)}
    return cost_models.fit([s for s in samples if s.kind in enough])


@dataclass(frozen=True)
class StoredRun:
    """A run a fit rests on, as the database has it: a kernel alone (by its signature, in `spec`), the empty-model
    probe, a composition, or a whole model (layer None)."""
    run_id: int
    spec: ModelSpec
    layer: str | None  # the kernel's signature (Job.layer_signature)
    median_ms: float | None  # None: it did not time


def refit(target: Target, overhead_ms: float, runs: list[StoredRun]) -> Fitted:
    """A fit of the current METHOD from a stored fit's runs, nothing timed again: its kernels' medians, net of its
    overhead, fitted per kind, then calibrated on its whole models where it timed some. What makes a fit versioned
    data: a later cost model reads the same measurements."""
    from ..predict.kernels import model_kernels

    fitted = Fitted(target, overhead_ms=overhead_ms)
    whole = []
    for run in runs:
        if run.layer is None:
            whole.append((run.spec, run.run_id, run.median_ms, "not timed"))
            continue
        fitted.run_ids.append(run.run_id)
        if run.layer == OVERHEAD_SIGNATURE or run.layer.startswith(FUSION_PREFIX) or run.median_ms is None:
            continue
        kernel = next((k for k in model_kernels(run.spec) if k.signature == run.layer), None)
        if kernel is None:  # a signature this version of the model no longer makes
            fitted.failed.append((run.layer, "not a kernel of its configuration now"))
            continue
        fitted.samples[run.layer] = cost_models.Sample(kernel.kind, run.layer, tuple(cost_models.terms(kernel)),
                                                       max(run.median_ms - overhead_ms, 0.0), run.median_ms)
    fitted.costs = fit_kinds(fitted.samples.values())
    if whole:
        calibrate_on(fitted, whole)
    return fitted


def fit_target(engine, target: Target, run_jobs: Callable[[list[Job]], list[tuple[int, RunResult]]], *,
               threads: int, cache_dir: Path, count: int = 60, rounds: int = 3, seed: int = 0,
               whole: int = WHOLE_MODELS) -> Fitted:
    """Time `count` sampled kernels and the overhead probe on `target` through `run_jobs` (jobs -> [(run id,
    result)] in order, stored as runs), fit, then `rounds - 1` adaptive rounds; `whole` whole models are timed among
    the kernels, spread over the rounds, and calibrate the final fit. Returns the fit (not stored)."""
    began = time.perf_counter()
    # A whole model timed after the kernels carries that minute's speed of the machine into its ratio to their sum
    # (this VM drifts by 5-10 % within the hour); timed among them, both sides of the ratio see the same speeds.
    calibration = whole_jobs(target, threads, cache_dir, whole, seed) if whole else []
    timed_whole: list[tuple[Job, tuple[int, RunResult]]] = []
    fitted = Fitted(target)
    probes: dict[str, Probe] = {}
    kernels: dict[str, object] = {}
    pending = sample_probes(count, seed)
    first = True
    for round_number in range(rounds):
        jobs = [overhead_job(target, threads, cache_dir)] if first else []
        for found in pending:
            job, kernel = kernel_job(found, target, threads, cache_dir)
            if kernel.signature in probes:
                continue
            probes[kernel.signature], kernels[kernel.signature] = found, kernel
            jobs.append(job)
        jobs = interleaved(jobs, calibration[round_number::rounds])
        results = run_jobs(jobs)
        for job, (run_id, result) in zip(jobs, results):
            if job.layer is None:  # a whole model, for the calibration once the kernels are fitted
                timed_whole.append((job, (run_id, result)))
                continue
            fitted.run_ids.append(run_id)
            ok = result.status == "ok" and result.summary is not None
            if job.layer == OVERHEAD:
                if not ok:
                    raise RuntimeError(f"{target.name}: the empty-model probe failed ({result.status}: "
                                       f"{result.error}); nothing can be fitted net of its overhead")
                fitted.overhead_ms = result.summary.median_ms
            elif ok:
                kernel = kernels[job.layer_signature]
                fitted.samples[job.layer_signature] = cost_models.Sample(
                    kernel.kind, job.layer_signature, tuple(cost_models.terms(kernel)),
                    max(result.summary.median_ms - fitted.overhead_ms, 0.0), result.summary.median_ms)
            else:
                fitted.failed.append((job.layer_signature, f"{result.status}: {result.error}"))
        first = False
        fitted.costs = fit_kinds(fitted.samples.values())
        if round_number + 1 < rounds:
            short = tuple(k for k in KINDS if sum(s.kind == k for s in fitted.samples.values()) < MIN_PER_KIND)
            pending = sample_probes(MIN_PER_KIND * len(short), seed + 1000 * (round_number + 1), short) if short else []
            for kind, cost in fitted.costs.items():
                mine = [s for s in fitted.samples.values() if s.kind == kind]
                worst = sorted(zip(cost.cv_errors, mine), key=lambda pair: -abs(pair[0]))[:WORST_PER_KIND]
                for _, sample in worst:
                    pending.extend(neighbours(sample, probes, seed + round_number))
    if whole:
        add_calibration(fitted, timed_whole)
    fitted.seconds = time.perf_counter() - began
    return fitted
