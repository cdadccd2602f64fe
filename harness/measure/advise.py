"""`harness advise`: search the deployment choices a device offers for each model and prove the best by
measurement, within a time budget. Every candidate is an ordinary job of run_sweep, stored as a run.

1. Screen fp32 on every target and full int8 wherever the device offers it: short timing, one kept worker per
   target, each with an op profile where a mixed recipe could follow.
2. Screen mixed int8 recipes that keep in float the op classes whose int8 kernels the profiles show slower than
   fp32 on the same target (analysis.advise.slower_in_int8), and the other precisions the targets compute.
3. Confirm the fastest screened candidates that reach the agreement floor, with the fp32 runs they are judged
   against and the best one on fewer threads: full timing, each in `repeats` fresh processes (successive halving:
   screening ranks cheaply, only confirmation decides).

Screening may take SCREEN_SHARE of the budget; confirmation gets what is left, as many candidates as fit, but
never fewer than the best one and its fp32 references."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from backends import BACKENDS

from ..analysis import advise as analysis
from ..protocol import Job, RunResult, TimingPolicy
from ..spec import ModelSpec, Target
from .child import WorkerPerTarget, measure_in_child
from .plan import JobSettings, plan, plan_jobs
from .sweep import Repeats, run_sweep

SCREEN_POLICY = TimingPolicy(warmup_iterations=3, warmup_seconds=0.3, min_iterations=10, min_seconds=0.5)
SCREEN_PROFILE = 10  # profiled inferences of a screened fp32 or int8 run a mixed recipe is read from
SCREEN_SHARE = 0.6
FRESH_PROCESS_S = 8.0  # a fresh worker's start: python, torch and the runtime imported (2 vCPUs)
OTHER_PRECISIONS = ("fp16", "bf16")


@dataclass
class AdviseOutcome:
    screen_sweeps: list[int] = field(default_factory=list)
    confirm_sweeps: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    not_screened: list[tuple[str, str, str]] = field(default_factory=list)  # (model, choice, why)
    not_searched: list[tuple[str, str, str]] = field(default_factory=list)  # (target, recipe, why not offered)
    recipe_sources: list[tuple[str, str, str]] = field(default_factory=list)  # (model, target, where from)
    seconds: float = 0.0
    budget_s: float = 0.0


@dataclass(frozen=True)
class AdviseSettings:
    device: str
    threads: int  # the most threads a candidate gets (the device's cores)
    policy: TimingPolicy  # confirmation's timing
    jobs: JobSettings  # cache, calibration and limits every job shares
    floor: float = analysis.DEFAULT_FLOOR
    keep: int = 3  # screened candidates confirmed per model, besides the fp32 references
    repeats: int = 3
    budget_s: float = 900.0
    backends: list[str] | None = None


Progress = Callable[[Job], None]
Done = Callable[[Job, RunResult], None]


class Screening:
    """Screening's worker: one kept process per target (run_sweep groups a round's jobs by target), whose valid
    runs are stored as 'screened': timed briefly in a shared process, they rank candidates but are never the
    latest valid run of their key, so no claim, comparison or findings table rests on one."""

    def __init__(self, kept: WorkerPerTarget):
        self.kept = kept

    def __call__(self, job: Job, timeout_s: float) -> RunResult:
        return self._screened(self.kept(job, timeout_s))

    def fresh(self, job: Job, timeout_s: float) -> RunResult:
        """A job run_sweep gives a process of its own (a cold torch.compile) is screened all the same."""
        return self._screened(measure_in_child(job, timeout_s))

    def new_round(self) -> None:
        self.kept.new_round()

    @staticmethod
    def _screened(result: RunResult) -> RunResult:
        if result.status == "ok":
            result.status = analysis.SCREENED
        return result


def thread_counts(most: int) -> list[int]:
    """Fewer threads the best candidate is confirmed on too: 1, and half the cores on a larger machine."""
    return sorted({1, most // 2} - {0, most})


def advise(engine, specs: list[ModelSpec], settings: AdviseSettings, command: str,
           on_start: Progress = lambda job: None, on_done: Done = lambda job, result: None,
           clock: Callable[[], float] = time.monotonic) -> AdviseOutcome:
    began = clock()
    outcome = AdviseOutcome(budget_s=settings.budget_s)
    screening_ends = began + settings.budget_s * SCREEN_SHARE
    targets: dict[str, Target] = {}

    def screen(jobs: list[Job]) -> dict[Job, list[int]]:
        if not jobs:
            return {}
        for job in jobs:
            targets[job.target.name] = job.target
        with WorkerPerTarget() as kept:
            swept = run_sweep(engine, jobs, command + analysis.SCREEN_TAG, on_start=on_start, on_done=on_done,
                              measure=Screening(kept), proceed=lambda: clock() < screening_ends)
        outcome.screen_sweeps.append(swept.sweep_id)
        outcome.statuses += swept.statuses
        outcome.not_screened += [(jobs[i].spec.model, _choice_label(jobs[i]), "the screening budget ran out")
                                 for i in swept.unstarted]
        return {jobs[i]: ids for i, ids in swept.runs.items()}

    mixable = _mixable_targets(settings)
    ran = screen(_first_jobs(specs, settings, outcome, mixable))
    more = (_mixed_jobs(engine, specs, settings, ran, outcome, mixable)
            + _other_precision_jobs(specs, settings, outcome))
    screen(promising_first(more, analysis.target_ranks(analysis.candidates(engine, outcome.screen_sweeps, []))))
    confirm = _confirm_jobs(engine, specs, settings, outcome, targets, began + settings.budget_s - clock())
    if confirm:
        swept = run_sweep(engine, confirm, command + analysis.CONFIRM_TAG, on_start=on_start, on_done=on_done,
                          repeats=Repeats(settings.repeats))
        outcome.confirm_sweeps.append(swept.sweep_id)
        outcome.statuses += swept.statuses
    outcome.seconds = clock() - began
    return outcome


def promising_first(jobs: list[Job], ranks: dict[tuple[str, int, str], int]) -> list[Job]:
    """`jobs` with those on each model's fastest screened targets first (run_sweep keeps a target's jobs together,
    in the order its first one comes), so a budget running out leaves the least promising unscreened."""
    return sorted(jobs, key=lambda job: ranks.get((job.spec.model, job.spec.resolution, job.target.name), len(ranks)))


def _choice_label(job: Job) -> str:
    return analysis.Choice(job.target.name, job.target.backend, job.precision, job.keep_float, job.threads).label


def _planned(specs: list[ModelSpec], settings: AdviseSettings, precision: str, outcome: AdviseOutcome,
             keep_float: str = "", backends: list[str] | None = None) -> list[Job]:
    """Screening jobs of `specs` in `precision` on the targets offered (of `backends`, else the search's); those
    not offered noted once with why."""
    jobs = JobSettings(settings.threads, SCREEN_POLICY, settings.jobs.cache_dir, 0, settings.jobs.max_other_cpu,
                       settings.jobs.max_steal, settings.jobs.calibration, keep_float=keep_float)
    found = plan(specs, settings.device, backends or settings.backends, precision, jobs)
    for target, reason in found.skipped:
        entry = (target.name, analysis.Choice(target.name, target.backend, precision, keep_float, 0).recipe, reason)
        if entry not in outcome.not_searched:
            outcome.not_searched.append(entry)
    return [job for job in found.jobs if not BACKENDS[job.target.backend].is_remote(job.target.device)]


def _first_jobs(specs: list[ModelSpec], settings: AdviseSettings, outcome: AdviseOutcome,
                mixable: list[Target]) -> list[Job]:
    """fp32 everywhere and full int8 where offered; profiled where a mixed recipe could follow."""
    found = []
    for precision in ("fp32", "int8"):
        for job in _planned(specs, settings, precision, outcome):
            found.append(_profiled(job) if job.target in mixable else job)
    return found


def _profiled(job: Job) -> Job:
    return replace(job, profile_iterations=SCREEN_PROFILE)


def _mixable_targets(settings: AdviseSettings) -> list[Target]:
    from .targets import plan_targets

    return plan_targets(settings.device, settings.backends, "int8", keep_float=analysis.KEEPABLE[0])[0]


def _mixed_jobs(engine, specs: list[ModelSpec], settings: AdviseSettings, ran: dict[Job, list[int]],
                outcome: AdviseOutcome, mixable: list[Target]) -> list[Job]:
    """Per model and target that can keep ops in float: the mixed recipes its own profiles suggest (fp32 against
    int8 per op class); a target without a profile of its own (LiteRT) takes the classes the device's profiled
    targets found slower."""
    profiles = analysis.class_ms(engine, [i for ids in ran.values() for i in ids])
    found: list[Job] = []
    for spec in specs:
        slower: dict[str, list[str]] = {}
        for target in sorted(t.name for t in mixable):
            runs = {job.precision: profiles.get(ids[-1]) for job, ids in ran.items()
                    if job.spec == spec and job.target.name == target and ids}
            if runs.get("fp32") and runs.get("int8"):
                slower[target] = analysis.slower_in_int8(runs["fp32"], runs["int8"])
        pooled = analysis.pooled_slower(slower)
        for target in sorted(t.name for t in mixable):
            own = target in slower
            classes = slower[target] if own else pooled
            if own:
                where = "its own op profiles (int8 against fp32)"
            else:
                where = (f"no op profile of its own: the classes int8 slowed on {', '.join(sorted(slower))}"
                         if slower else "no op profile here to choose classes from")
            recipes = analysis.mixed_recipes(classes)
            outcome.recipe_sources.append((spec.model, target, f"{where}: " + (
                ", ".join(f"int8+float({r.replace(',', ', ')})" for r in recipes) if recipes
                else "no class slower in int8, no mixed recipe")))
            backend = next(t.backend for t in mixable if t.name == target)
            for keep_float in recipes:
                found += [job for job in _planned([spec], settings, "int8", outcome, keep_float, [backend])
                          if job.target.name == target]
    return found


def _other_precision_jobs(specs: list[ModelSpec], settings: AdviseSettings, outcome: AdviseOutcome) -> list[Job]:
    return [job for precision in OTHER_PRECISIONS for job in _planned(specs, settings, precision, outcome)]


def _confirm_jobs(engine, specs: list[ModelSpec], settings: AdviseSettings, outcome: AdviseOutcome,
                  targets: dict[str, Target], seconds_left: float) -> list[Job]:
    """The survivors of screening as full-timing jobs, as many as the rest of the budget holds: per model the best
    and its fp32 references always, then the others by screened rank, then the best on fewer threads."""
    screened = analysis.candidates(engine, outcome.screen_sweeps, [])
    required, optional = [], []
    for spec in specs:
        top, references = analysis.survivors([c for c in screened if (c.model, c.resolution) ==
                                              (spec.model, spec.resolution)], settings.keep, settings.floor)
        if not top:
            continue
        required += [(spec, c, c.choice.threads) for c in top[:1] + references]
        optional += [(spec, c, c.choice.threads) for c in top[1:]]
        optional += [(spec, top[0], threads) for threads in thread_counts(settings.threads)]
    estimate = _estimate(engine, settings.policy)
    jobs, spent = [], 0.0
    for must, (spec, candidate, threads) in [(True, item) for item in required] + [(False, item) for item in optional]:
        cost = estimate(candidate) * settings.repeats
        choice = replace(candidate.choice, threads=threads)
        if not must and spent + cost > seconds_left:
            outcome.not_screened.append((spec.model, choice.label, "not confirmed: the budget ran out"))
            continue
        spent += cost
        jobs += plan_jobs([spec], [targets[choice.target]], threads=threads, policy=settings.policy,
                          cache_dir=settings.jobs.cache_dir, precision=choice.precision,
                          max_other_cpu=settings.jobs.max_other_cpu, max_steal=settings.jobs.max_steal,
                          calibration=settings.jobs.calibration, keep_float=choice.keep_float)
    return jobs


def _estimate(engine, policy: TimingPolicy) -> Callable[[analysis.Candidate], float]:
    """Seconds one confirming process of a candidate takes: its screened run's wall time without the export, a
    fresh process's start, and the full policy's timing."""
    from sqlalchemy.orm import Session

    from ..store import Run

    def estimate(candidate: analysis.Candidate) -> float:
        with Session(engine) as session:
            run = session.get(Run, candidate.run_ids[-1])
            wall = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 30.0
            export = (run.export_ms or 0.0) / 1000
            timing = max((run.median_ms or 0.0) / 1000 * policy.min_iterations, policy.min_seconds)
        return max(wall - export, 1.0) + FRESH_PROCESS_S + policy.warmup_seconds + timing

    return estimate
