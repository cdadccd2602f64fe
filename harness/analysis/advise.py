"""`harness advise` as plain data: for each model, the candidates one advise session screened and confirmed (a
target, a precision recipe and a thread count), their Pareto front of latency, agreement with fp32 and memory, and
the recommendation under an agreement floor with its gain over fp32. Also the search's pure steps, which the
measuring side calls between its stages: which screened candidates go on to be confirmed, and which op classes a
mixed int8 recipe keeps in float.

Agreement is the mean logit cosine similarity with fp32 torch on the held-out photographs (runs.agreement_cosine):
top-1 agreement on eight photographs moves in steps of 12.5 %, too coarse to rank recipes by."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..protocol import TIMED_STATUSES
from ..spec import model_sort_key
from ..store import OpProfile, Run, Sweep, recipe_label
from .claims import Claim, run_command

SCREENED, CONFIRMED = "screened", "confirmed"  # a candidate's stage; "screened" is its runs' status too
SCREEN_TAG, CONFIRM_TAG = " [advise: screen]", " [advise: confirm]"  # ends of an advise session's sweep commands
# op classes whose operators each runtime's int8 quantizer computes in int8 and a mixed recipe can keep in float
KEEPABLE = ("conv_dw_3x3", "conv_dw_7x7", "conv_dw_other", "conv_pointwise", "conv_dense", "linear",
            "attention_matmul")
SLOWER_MARGIN = 0.05  # int8 time of a class past fp32's by more than this share: worth keeping in float
DEFAULT_FLOOR = 0.99  # the mean logit cosine a recommendation reaches unless asked otherwise
MIN_CLASS_MS = 0.05  # a class below this in fp32 costs too little to be worth a recipe of its own


@dataclass(frozen=True)
class Choice:
    """One deployment choice for a model: where it runs, in which recipe, on how many threads."""
    target: str
    backend: str
    precision: str
    keep_float: str
    threads: int

    @property
    def recipe(self) -> str:
        return recipe_label(self.precision, self.keep_float)

    @property
    def device(self) -> str:
        """The device part of the target's name ("onnxruntime/cpu", "torch-compile/cpu[mode=...]")."""
        return self.target.split("/", 1)[1].split("[", 1)[0]

    @property
    def label(self) -> str:
        return f"{self.target} {self.recipe}, {self.threads} thread{'s' if self.threads != 1 else ''}"


@dataclass
class Candidate:
    model: str
    resolution: int
    choice: Choice
    stage: str  # screened | confirmed
    status: str  # ok, or the runs' status when none was timed validly
    median_ms: float | None  # median of its processes' medians
    spread: float | None  # (max - min) / median of those medians, with 2+ processes
    processes: int
    cosine: float | None
    top1: float | None
    memory_mb: float | None  # the model's share of the process's peak
    noisy: bool
    error: str | None
    run_ids: list[int] = field(default_factory=list)

    @property
    def timed(self) -> bool:
        return self.median_ms is not None


def reproduce_command(candidate: Candidate, repeats: int = 3) -> str:
    """The `harness run` that times this candidate again, as its confirmation did."""
    choice = candidate.choice
    options = dict(item.split("=", 1) for item in choice.target.partition("[")[2].rstrip("]").split(",") if item)
    return run_command(choice.device, [choice.backend], candidate.model, candidate.resolution, "reparam",
                       choice.precision, 1, *([f"--compile-mode {options['mode']}"] if "mode" in options else []),
                       f"--threads {choice.threads}", f"--repeats {repeats}", keep_float=choice.keep_float)


def meets(candidate: Candidate, floor: float) -> bool:
    return candidate.cosine is not None and candidate.cosine >= floor


def _worst_last(candidate: Candidate) -> tuple[float, float, float]:
    """The three objectives as numbers to minimise; an unknown one counts as the worst."""
    return (candidate.median_ms if candidate.median_ms is not None else float("inf"),
            -candidate.cosine if candidate.cosine is not None else float("inf"),
            candidate.memory_mb if candidate.memory_mb is not None else float("inf"))


def dominates(a: Candidate, b: Candidate) -> bool:
    """a is at least as good as b on latency, agreement and memory, and better on one."""
    left, right = _worst_last(a), _worst_last(b)
    return all(x <= y for x, y in zip(left, right)) and left != right


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """The timed candidates no other timed one dominates, fastest first."""
    timed = [c for c in candidates if c.timed]
    return sorted((c for c in timed if not any(dominates(o, c) for o in timed)), key=_worst_last)


def survivors(screened: list[Candidate], keep: int, floor: float) -> tuple[list[Candidate], list[Candidate]]:
    """Successive halving's cut: (the `keep` fastest screened candidates that ran ok and reach the floor, fastest
    first; the fp32 references a recommendation is judged against that are not among them: the fp32 run of the
    best one's target and threads, and the fastest fp32 candidate)."""
    fit = sorted((c for c in screened if c.timed and c.status == "ok" and meets(c, floor)),
                 key=lambda c: c.median_ms)
    top = fit[:keep]
    fp32 = [c for c in fit if c.choice.precision == "fp32"]
    references: list[Candidate] = []
    if top:
        best = top[0].choice
        references += [c for c in fp32 if (c.choice.target, c.choice.threads) == (best.target, best.threads)][:1]
    references += fp32[:1]
    chosen = {c.choice for c in top}
    unique = []
    for candidate in references:
        if candidate.choice not in chosen:
            chosen.add(candidate.choice)
            unique.append(candidate)
    return top, unique


def target_ranks(screened: list[Candidate]) -> dict[tuple[str, int, str], int]:
    """Per model, its targets ranked by their fastest screened candidate (0: the fastest): where a further recipe
    is most likely to win, so a budget spends itself there first."""
    best: dict[tuple[str, int, str], float] = {}
    for c in screened:
        if c.timed:
            key = (c.model, c.resolution, c.choice.target)
            best[key] = min(best.get(key, float("inf")), c.median_ms)
    ranks = {}
    for model in {(m, r) for m, r, _ in best}:
        ordered = sorted((key for key in best if key[:2] == model), key=best.get)
        ranks.update({key: rank for rank, key in enumerate(ordered)})
    return ranks


def slower_in_int8(fp32_ms: dict[str, float], int8_ms: dict[str, float]) -> list[str]:
    """The op classes a mixed recipe should keep in float: those whose int8 kernels take longer per inference than
    their fp32 ones on the same target (per-class milliseconds from each run's op profile), the largest loss
    first."""
    losses = {cls: int8_ms[cls] - fp32_ms[cls] for cls in KEEPABLE
              if cls in fp32_ms and cls in int8_ms and fp32_ms[cls] >= MIN_CLASS_MS
              and int8_ms[cls] > fp32_ms[cls] * (1 + SLOWER_MARGIN)}
    return sorted(losses, key=lambda cls: -losses[cls])


def pooled_slower(per_target: dict[str, list[str]]) -> list[str]:
    """For a target without a profile of its own: the classes other targets found slower in int8, those most of them
    name first, then by their average rank there."""
    ranks: dict[str, list[int]] = {}
    for classes in per_target.values():
        for rank, cls in enumerate(classes):
            ranks.setdefault(cls, []).append(rank)
    return sorted(ranks, key=lambda cls: (-len(ranks[cls]), sum(ranks[cls]) / len(ranks[cls]), cls))


def mixed_recipes(slower: list[str], limit: int = 3) -> list[str]:
    """The keep_float values to try: every slower class kept in float together, then each of the worst alone
    (where there are several), at most `limit`."""
    if not slower:
        return []
    found = [",".join(sorted(slower))]
    if len(slower) > 1:
        found += slower[:limit - 1]
    return found[:limit]


def class_ms(engine, run_ids: list[int]) -> dict[int, dict[str, float]]:
    """Per run, milliseconds per inference of each op class in its op profile (runs without one are left out)."""
    found: dict[int, dict[str, float]] = {}
    if not run_ids:
        return found
    with Session(engine) as session:
        for run_id, cls, ms in session.execute(select(OpProfile.run_id, OpProfile.op_class, OpProfile.total_ms)
                                               .where(OpProfile.run_id.in_(run_ids))):
            found.setdefault(run_id, {})
            found[run_id][cls] = found[run_id].get(cls, 0.0) + ms
    return found


def choice_of(run: Run) -> Choice:
    return Choice(run.target, run.backend, run.precision, run.keep_float or "", run.threads)


def _candidate(model: str, resolution: int, choice: Choice, stage: str, runs: list[Run]) -> Candidate:
    timed = [r for r in runs if r.status in ("ok", SCREENED) and r.latency_ms]  # valid, briefly timed or not
    counted = timed or [r for r in runs if r.status in TIMED_STATUSES and r.latency_ms]
    medians = [r.latency_ms for r in counted]
    middle = statistics.median(medians) if medians else None
    spread = (max(medians) - min(medians)) / middle if middle and len(medians) > 1 else None
    cosines = [r.agreement_cosine for r in runs if r.agreement_cosine is not None]
    tops = [r.agreement_top1 for r in runs if r.agreement_top1 is not None]
    memory = [r.model_peak_mb for r in counted if r.model_peak_mb is not None]
    status = "ok" if timed else runs[-1].status
    error = next((r.error for r in reversed(runs) if r.error), None) if not timed else None
    return Candidate(model, resolution, choice, stage, status, middle, spread, len(counted),
                     min(cosines) if cosines else None, min(tops) if tops else None,
                     statistics.median(memory) if memory else None, any(r.noisy for r in counted), error,
                     [r.id for r in runs])


def candidates(engine, screen_sweeps: list[int], confirm_sweeps: list[int]) -> list[Candidate]:
    """Every candidate the sweeps timed: its confirmed runs where it has any, else its screening run."""
    grouped: dict[tuple, dict[str, list[Run]]] = {}
    with Session(engine) as session:
        runs = session.scalars(select(Run).where(Run.sweep_id.in_(screen_sweeps + confirm_sweeps),
                                                 Run.layer.is_(None)).order_by(Run.id)).all()
        for run in runs:
            stage = CONFIRMED if run.sweep_id in confirm_sweeps else SCREENED
            grouped.setdefault((run.model, run.resolution, choice_of(run)), {}).setdefault(stage, []).append(run)
        return [_candidate(model, resolution, choice, stage, stages[stage])
                for (model, resolution, choice), stages in grouped.items()
                for stage in [CONFIRMED if CONFIRMED in stages else SCREENED]]


@dataclass
class ModelAdvice:
    model: str
    resolution: int
    floor: float
    candidates: list[Candidate]  # fastest first, untimed last
    front: list[Candidate]
    recommended: Candidate | None
    runtime_fp32: Candidate | None  # the confirmed fp32 run of the recommendation's target and threads
    fastest_fp32: Candidate | None  # the fastest confirmed fp32 candidate

    @property
    def gain_over_runtime_fp32(self) -> float | None:
        return _ratio(self.runtime_fp32, self.recommended)

    @property
    def gain_over_fastest_fp32(self) -> float | None:
        return _ratio(self.fastest_fp32, self.recommended)

    @property
    def why_none(self) -> str | None:
        if self.recommended is not None:
            return None
        if not any(c.stage == CONFIRMED for c in self.candidates):
            return "no candidate was confirmed (the budget ran out, or none reached the floor when screened)"
        return f"no confirmed candidate reaches the agreement floor (cosine {self.floor})"


def _ratio(slow: Candidate | None, fast: Candidate | None) -> float | None:
    if slow is None or fast is None or not slow.median_ms or not fast.median_ms:
        return None
    return slow.median_ms / fast.median_ms


def recommend(found: list[Candidate], floor: float) -> Candidate | None:
    """The fastest confirmed candidate that ran ok and reaches the floor."""
    fit = [c for c in found if c.stage == CONFIRMED and c.status == "ok" and c.timed and meets(c, floor)]
    return min(fit, key=lambda c: c.median_ms, default=None)


def model_advice(model: str, resolution: int, found: list[Candidate], floor: float) -> ModelAdvice:
    best = recommend(found, floor)
    fp32 = sorted((c for c in found if c.stage == CONFIRMED and c.status == "ok" and c.timed
                   and c.choice.precision == "fp32"), key=lambda c: c.median_ms)
    same = next((c for c in fp32 if best and (c.choice.target, c.choice.threads) ==
                 (best.choice.target, best.choice.threads)), None)
    ordered = sorted(found, key=lambda c: (not c.timed, c.median_ms or 0.0, c.choice.label))
    return ModelAdvice(model, resolution, floor, ordered, pareto_front(found), best, same, fp32[0] if fp32 else None)


def advice(engine, screen_sweeps: list[int], confirm_sweeps: list[int], floor: float) -> list[ModelAdvice]:
    """Per model (in the paper's order), what one advise session found."""
    found = candidates(engine, screen_sweeps, confirm_sweeps)
    models = sorted({(c.model, c.resolution) for c in found}, key=lambda m: (model_sort_key(m[0]), m[1]))
    return [model_advice(m, r, [c for c in found if (c.model, c.resolution) == (m, r)], floor) for m, r in models]


@dataclass(frozen=True)
class RejudgedClaim:
    """A headline claim of the paper judged at each model's recommended recipe on this device: what a user who
    ships both models the best way here would see."""
    claim: Claim
    fast: Candidate | None  # the faster-claimed model's recommendation; None where it was not advised
    slow: Candidate | None

    @property
    def speedup(self) -> float | None:
        return _ratio(self.slow, self.fast)

    @property
    def verdict(self) -> str | None:
        if self.speedup is None:
            return None
        if self.speedup >= self.claim.claimed:
            return "reaches the paper's figure"
        return "faster, short of the paper's figure" if self.speedup > 1 else "slower"

    @property
    def needs(self) -> str:
        """The command that advises the model(s) it lacks."""
        models = [m.removeprefix("timm:") for m, found in ((self.claim.fast, self.fast), (self.claim.slow, self.slow))
                  if found is None]
        return "harness advise --device cpu " + " ".join(f"--model {m}" for m in models)


def rejudged_claims(found: list[ModelAdvice]) -> list[RejudgedClaim]:
    """Every headline claim (analysis.compare.HEADLINE) at the recommendations of `found`."""
    from .compare import HEADLINE

    best = {(item.model, item.resolution): item.recommended for item in found}
    return [RejudgedClaim(claim, best.get((claim.fast, claim.fast_resolution)),
                          best.get((claim.slow, claim.slow_resolution))) for claim in HEADLINE]


@dataclass(frozen=True)
class AdviseSession:
    command: str  # the advise command, without its stage tag
    screen_sweeps: list[int]
    confirm_sweeps: list[int]


def sessions(engine) -> list[AdviseSession]:
    """Every stored advise session, oldest first: a run of consecutive sweeps of one advise command, screening
    then confirming."""
    found: list[AdviseSession] = []
    with Session(engine) as session:
        rows = session.execute(select(Sweep.id, Sweep.command).where(
            Sweep.command.like(f"%{SCREEN_TAG}") | Sweep.command.like(f"%{CONFIRM_TAG}")).order_by(Sweep.id)).all()
    for sweep_id, command in rows:
        confirm = command.endswith(CONFIRM_TAG)
        base = command[:-len(CONFIRM_TAG if confirm else SCREEN_TAG)]
        last = found[-1] if found else None
        if last is None or last.command != base or (not confirm and last.confirm_sweeps):
            found.append(last := AdviseSession(base, [], []))
        (last.confirm_sweeps if confirm else last.screen_sweeps).append(sweep_id)
    return found


def latest_advice(engine, floor: float, hostname: str | None = None) -> list[ModelAdvice]:
    """Per model, what the newest advise session that confirmed it found (on `hostname`, where given)."""
    newest: dict[tuple, ModelAdvice] = {}
    for found in sessions(engine):
        for item in advice(engine, found.screen_sweeps, found.confirm_sweeps, floor):
            if item.recommended is not None and (hostname is None or _host_of(engine, item) == hostname):
                newest[(item.model, item.resolution)] = item
    return [newest[key] for key in sorted(newest, key=lambda m: (model_sort_key(m[0]), m[1]))]


def _host_of(engine, item: ModelAdvice) -> str | None:
    from ..store import Host

    with Session(engine) as session:
        return session.scalar(select(Host.hostname).join(Run, Run.host_id == Host.id)
                              .where(Run.id == item.recommended.run_ids[0]))
