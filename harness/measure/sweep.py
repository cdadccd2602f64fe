"""A sweep: the jobs of one `harness run` (model specs x targets x repeats), each timed in a child
process and stored the moment it ends; and the peak-throughput measurements of `harness peak`."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from backends import Backend

from ..protocol import Job, PeakJob, PeakResult, RunResult, TimingPolicy
from ..spec import ModelSpec, Target
from ..store import finish_sweep, save_coverage, save_peak, save_run, set_process_spread, start_sweep
from .artifacts import coverage_of, spec_artifact
from .child import measure_in_child
from .compile_cost import needs_cold_compile
from .environment import host_facts
from .farm import FARM_TIMEOUT_S, device_host, is_farm

FARM_PARALLEL = 16  # farm jobs in flight at once (each a worker process that mostly waits)
PEAK_POLICY = TimingPolicy(warmup_iterations=5, warmup_seconds=1.0, min_iterations=20, min_seconds=2.0)


@dataclass(frozen=True)
class Repeats:
    """How many fresh processes time each job: `count`, or (count None) until the medians of the last
    `window` processes agree within `tolerance` of their median, at most `max_count` (MLPerf Mobile asks
    results to replicate within 5 %)."""
    count: int | None = 1
    tolerance: float = 0.05
    window: int = 3
    max_count: int = 10

    def settled(self, medians: list[float]) -> bool:
        if self.count is not None:
            return len(medians) >= self.count
        if len(medians) >= self.max_count:
            return True
        last = medians[-self.window:]
        return len(last) == self.window and spread(last) <= self.tolerance


def spread(medians: list[float]) -> float:
    """(max - min) / median of process medians: how far fresh processes of one job land apart."""
    middle = statistics.median(medians)
    return (max(medians) - min(medians)) / middle if middle else 0.0


def timeout_for(policy: TimingPolicy) -> float:
    # export and compilation of the largest variants take a few minutes on 2 cores
    return 900 + policy.max_seconds * 2


def store_result(engine, job: Job, result: RunResult, host: dict, sweep_id: int | None = None) -> int:
    """Store one job's result as a run of `host` (this machine, or a lab agent); returns the run id."""
    return save_run(engine, result, spec=job.spec, target=job.target, threads=job.threads, precision=job.precision,
                    host=host, sweep_id=sweep_id, layer=job.layer_signature, layer_count=job.layer_count,
                    keep_float=job.keep_float)


Measure = Callable[[Job, float], RunResult]  # a job and its timeout -> its result, from a worker process


def time_and_store(engine, job: Job, sweep_id: int | None = None, strict: int = 0,
                   measure: Measure | None = None) -> tuple[int, RunResult]:
    """Time one job in a worker process (by default a fresh one, child.measure_in_child) and store its run,
    whatever the outcome: (run id, result). strict: re-time a noisy run up to this many times first."""
    farm = is_farm(job.target.device)
    timeout = FARM_TIMEOUT_S if farm else timeout_for(job.policy)
    result, attempts = (measure or measure_in_child)(job, timeout), 1
    while result.noisy and attempts <= strict:  # each time again in a fresh process
        result, attempts = measure_in_child(job, timeout), attempts + 1
    if attempts > 1:
        result.environment["timing_attempts"] = attempts  # the earlier ones were noisy
    # a farm's run belongs to the device that ran it, this machine's to this machine
    run_id = store_result(engine, job, result, device_host(job.target.device) if farm else host_facts(), sweep_id)
    return run_id, result


@dataclass
class SweepOutcome:
    """The runs of one sweep as they are stored, and per job (any hashable key) the medians of its
    fresh processes, from which each job's between-process spread is set when the sweep ends."""
    sweep_id: int
    run_ids: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # of each run, in order
    medians: dict = field(default_factory=dict)  # job key -> medians of its valid runs
    runs: dict = field(default_factory=dict)  # job key -> its run ids
    unstarted: list = field(default_factory=list)  # job keys `proceed` stopped before they started

    @property
    def failed(self) -> int:
        return sum(status != "ok" for status in self.statuses)

    def record(self, key, run_id: int, result: RunResult) -> bool:
        """Note one stored run of job `key`; True when it was valid and timed (its median counts)."""
        self.run_ids.append(run_id)
        self.statuses.append(result.status)
        self.runs.setdefault(key, []).append(run_id)
        timed = result.status == "ok" and bool(result.summary and result.summary.median_ms)
        if timed:
            self.medians.setdefault(key, []).append(result.summary.median_ms)
        return timed

    def finish(self, engine, status: str) -> None:
        """Give every run of a job timed in several processes their spread; mark the sweep `status`."""
        for key, found in self.medians.items():
            if len(found) > 1:
                set_process_spread(engine, self.runs[key], spread(found))
        finish_sweep(engine, self.sweep_id, status)


def run_sweep(engine, jobs: list[Job], command: str, on_start: Callable[[Job], None] = lambda job: None,
              on_done: Callable[[Job, RunResult], None] = lambda job, result: None, strict: int = 0,
              repeats: Repeats = Repeats(), measure: Measure | None = None,
              proceed: Callable[[], bool] | None = None) -> SweepOutcome:
    """Time and store every job, each in `repeats` fresh processes, round-robin over the jobs (slow drift
    of the machine then hits every job alike); each run is stored as it ends, and every run of a job
    gets its jobs' between-process spread. The sweep is marked finished, or interrupted if it stops.
    measure: how a job reaches a worker (a fresh process each; or child.WorkerPerTarget: one kept process per
    target, the jobs of a round grouped by target, and new processes every round, so each repetition of a job
    still runs in a process of its own). A farm's jobs always wait in fresh processes of their own.
    proceed: asked before each local job starts (a budget); once it says no, the jobs not yet started are left
    (outcome.unstarted) and the sweep finishes with what it has."""
    outcome = SweepOutcome(start_sweep(engine, command))
    failed: set[int] = set()
    stopped: set[int] = set()  # left unstarted once `proceed` said no
    status = "interrupted"
    try:
        # a kept worker is left out where a job needs a process of its own (its `fresh`, where it names one); any
        # other `measure` makes one per job
        fresh = getattr(measure, "fresh", None) if hasattr(measure, "new_round") else measure

        def run(i: int) -> None:
            if proceed is not None and not is_farm(jobs[i].target.device) and (i in stopped or not proceed()):
                stopped.add(i)
                return
            on_start(jobs[i])
            job, how = jobs[i], measure
            if is_farm(job.target.device):  # each repetition is a measurement of its own there, not the same one
                job, how = replace(job, repeat=len(outcome.runs.get(i, []))), fresh
            elif needs_cold_compile(job):  # a cold compile is measured where nothing was compiled or imported yet
                how = fresh
                if hasattr(measure, "new_round"):  # and no idle kept worker holds its 0.6 GB beside it meanwhile:
                    measure.new_round()  # the kept-worker protocol's way to close it (the next job starts a new one)
            run_id, result = time_and_store(engine, job, outcome.sweep_id, strict, how)
            if not outcome.record(i, run_id, result):
                failed.add(i)  # a job that does not run is not retried round after round
            on_done(jobs[i], result)

        while pending := [i for i in range(len(jobs)) if i not in failed and i not in stopped
                          and not repeats.settled(outcome.medians.get(i, []))]:
            # a farm's jobs wait on a service, not on this machine: all of them at once, beside the local ones
            farm = [i for i in pending if is_farm(jobs[i].target.device)]
            local = [i for i in pending if i not in farm]
            if hasattr(measure, "new_round"):
                measure.new_round()  # a kept process per target, new for every round
                local = grouped_by_target(jobs, local)  # one kept process runs all of a target's models
            with ThreadPoolExecutor(max_workers=max(1, min(len(farm), FARM_PARALLEL))) as pool:
                waiting = [pool.submit(run, i) for i in farm]
                for i in local:
                    run(i)
                for future in waiting:
                    future.result()
        outcome.unstarted = sorted(i for i in stopped if i not in outcome.runs)
        status = "finished"
    finally:
        outcome.finish(engine, status)
    return outcome


def grouped_by_target(jobs: list[Job], indices: list[int]) -> list[int]:
    """`indices` with each target's jobs together, the targets in the order they first appear, each target's jobs
    in their own order."""
    first: dict[Target, int] = {}
    for position, i in enumerate(indices):
        first.setdefault(jobs[i].target, position)
    order = {i: position for position, i in enumerate(indices)}
    return sorted(indices, key=lambda i: (first[jobs[i].target], order[i]))


def expected_seconds(engine, jobs: list[Job], host: dict | None = None) -> dict[tuple, float]:
    """How long each job took before on this host, from the stored runs: per (target, model) the median wall time
    of its runs, else the target's median, else every run's (keys: job_key). Empty where nothing ran here yet."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ..store import Host, Run

    host = host or host_facts()
    took: dict[tuple, list[float]] = {}
    with Session(engine) as session:
        rows = session.execute(select(Run.target, Run.model, Run.started_at, Run.finished_at).join(Host).where(
            Host.hostname == host["hostname"], Run.published.is_(False), Run.imported.is_(False),
            Run.layer.is_(None), Run.finished_at.is_not(None))).all()
    for target, model, began, ended in rows:
        seconds = (ended - began).total_seconds()
        if seconds > 0:
            for key in ((target, model), (target,), ()):
                took.setdefault(key, []).append(seconds)
    found = {}
    for job in jobs:
        for key in ((job.target.name, job.spec.model), (job.target.name,), ()):
            if key in took:
                found[job_key(job)] = statistics.median(took[key])
                break
    return found


def job_key(job: Job) -> tuple:
    return (job.target.name, job.spec, job.precision, job.keep_float, job.layer)


def measure_peaks(engine, targets: list[Target], threads: int, size: int, cache_dir: Path
                  ) -> list[tuple[Target, PeakResult]]:
    """Each target's dense-GEMM throughput, measured in a child process like every run; stored when ok."""
    outcomes = []
    for target in targets:
        job = PeakJob(target, threads, size, PEAK_POLICY, str(Path(cache_dir).resolve()))
        result = measure_in_child(job, timeout_for(PEAK_POLICY))
        if result.status == "ok":
            save_peak(engine, host=host_facts(), target=target.name, threads=threads, gflops=result.gflops,
                      gemm_size=size)
        outcomes.append((target, result))
    return outcomes


def measure_precision_coverage(engine, spec: ModelSpec, backends: list[Backend], precision: str, calibration,
                               cache_dir: Path, keep_float: str = "") -> None:
    """Export `spec` in `precision` (the mixed recipe `keep_float`, if any) for each backend (or find it in the
    cache), calibrated on `calibration` (harness.measure.images.ImageSet), and store which ops its runtime
    computes in low precision."""
    from sqlalchemy.orm import Session

    from ..store.writes import save_precision_coverage
    from .artifacts import precision_coverage_of

    for backend in backends:
        path, _ = spec_artifact(spec, backend, precision, cache_dir, calibration, keep_float)
        with Session(engine) as session, session.begin():
            save_precision_coverage(session, spec, backend.name, precision, calibration.identity,
                                    precision_coverage_of(backend, path), keep_float)


def measure_coverage(engine, spec: ModelSpec, backends: list[Backend], cache_dir: Path) -> None:
    """Export `spec` for each delegating backend (or find it in the cache) and store which ops its
    partitioner took. Needs no device: a Core ML lowering is made here and only runs on a Mac."""
    from sqlalchemy.orm import Session

    for backend in backends:
        path, _ = spec_artifact(spec, backend, "fp32", cache_dir)
        with Session(engine) as session, session.begin():
            save_coverage(session, spec, backend.name, coverage_of(backend, path))


def measure_any_coverage(engine, spec: ModelSpec, backends: list[Backend], precision: str, calibration: Path | None,
                         cache_dir: Path, keep_float: str = "") -> None:
    """`harness coverage`: delegation in fp32, int8 coverage in a low precision, of the mixed recipe `keep_float`
    if any (calibrated on the --calibration folder or the bundled photographs; ImageSetError where they cannot be
    read)."""
    from ..protocol import LOW_PRECISIONS
    from .images import calibration_set

    if precision in LOW_PRECISIONS:
        measure_precision_coverage(engine, spec, backends, precision, calibration_set(spec.resolution, calibration),
                                   cache_dir, keep_float)
    else:
        measure_coverage(engine, spec, backends, cache_dir)
