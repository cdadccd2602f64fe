"""The paper's (and the review's) speed claims as one table of data, re-checked against stored runs.

A claim says model FAST is faster than model SLOW, by a factor the paper measured on its devices
(speedup = latency(SLOW) / latency(FAST); "26.3% faster" = 1.263), or "just as fast" (a figure of 1 that
FAST must not fall significantly below). Each is checked on every protocol the runs allow: every
(host, target, threads, precision, batch) that holds a valid run of both, each model at the claim's
resolution for it. A verdict names its protocol, and is judged against the paper's figure for that
device's fabric (GPU: the desktop-GPU figure; phones and Macs: the iPhone figure; elsewhere the
weakest figure claimed):

  holds          the speedup's 95% interval lies above 1 and reaches the paper's figure
                 ("as fast": the interval reaches 1)
  does not hold  FAST is not significantly faster, or is faster by clearly less than claimed
  not enough data  one of the two runs is missing on that target

The paper timed its GPU claims with TensorRT in fp16 at batch 8 on an RTX 2080 Ti and its mobile
claims with Core ML at batch 1 on an iPhone 12 Pro (PAPER_PROTOCOLS); a check at those conditions
is marked as the paper's protocol, every other one is labelled with its own.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

import fastvit

from .. import baselines
from ..stats import ratio_of_medians
from ..store import Host, Run, Sample, float_classes, latest_repeats


def fabric(device: str) -> str | None:
    """The kind of device a paper figure is for: 'gpu' (CUDA), 'mobile' (iPhone, Mac compute units, Android),
    or None (a CPU, an Intel GPU or NPU: the paper timed none)."""
    if device == "gpu":
        return "gpu"
    if device.startswith(("iphone", "mac", "android")):
        return "mobile"
    return None


@dataclass(frozen=True)
class PaperProtocol:
    """The conditions the paper timed one fabric's claims under."""
    fabric: str
    precision: str | None  # None: whatever the runtime chose (Core ML on the Neural Engine computes in fp16)
    batch: int
    description: str

    def matches(self, device: str, precision: str, batch: int) -> bool:
        return (fabric(device) == self.fabric and batch == self.batch
                and (self.precision is None or precision == self.precision))


PAPER_PROTOCOLS = {
    "gpu": PaperProtocol("gpu", "fp16", 8, "TensorRT fp16, batch 8, RTX 2080 Ti"),
    "mobile": PaperProtocol("mobile", None, 1, "Core ML, batch 1, iPhone 12 Pro"),
}


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    fast: str  # canonical model names (harness.spec.canonical_model)
    slow: str
    fast_resolution: int = 256
    slow_resolution: int = 256
    fast_form: str = "reparam"
    slow_form: str = "reparam"
    paper_mobile: float | None = None  # claimed speedup on the iPhone 12 Pro (Core ML)
    paper_gpu: float | None = None  # claimed speedup on the paper's desktop GPU (TensorRT)
    as_fast_on: tuple[str, ...] = ()  # fabrics where the claim is "just as fast" (its figure there is 1)
    source: str = "FastViT paper"

    @property
    def label(self) -> str:
        """'s12 vs mobileone_s4'; a claim between two forms of one model: 't8 reparam vs train'."""
        if self.fast == self.slow:
            return f"{self.fast} {self.fast_form} vs {self.slow_form}"
        return f"{self.fast} vs {self.slow.removeprefix('timm:')}"

    @property
    def paper_figures(self) -> str:
        """'mobile 1.263x, GPU 1.269x': the paper's figures, as the views name them."""
        return ", ".join(f"{'GPU' if where == 'gpu' else where} {figure}x" for where, figure in self.figures.items())

    @property
    def claimed(self) -> float:
        """The weakest figure claimed (1.0: only 'faster' or 'as fast' is claimed)."""
        return self.figure_on(None)[0]

    @property
    def figures(self) -> dict[str, float]:
        """The paper's figure per fabric it timed this claim on ('mobile', 'gpu')."""
        return {f: v for f, v in (("mobile", self.paper_mobile), ("gpu", self.paper_gpu)) if v}

    def figure_on(self, where: str | None) -> tuple[float, bool]:
        """(the speedup claimed on fabric `where`, whether it is an 'as fast' claim): that fabric's figure, or
        for a fabric the paper did not time the weakest figure it claims."""
        figures = self.figures
        if where in figures:
            return figures[where], where in self.as_fast_on
        if not figures:
            return 1.0, False
        weakest = min(figures, key=lambda f: (figures[f], f not in self.as_fast_on))
        return figures[weakest], weakest in self.as_fast_on


CLAIMS: tuple[Claim, ...] = (
    Claim("s12_vs_mobileone_s4", "FastViT-S12 is 26.3% faster than MobileOne-S4 on mobile, 26.9% on GPU",
          "s12", "timm:mobileone_s4", slow_resolution=baselines.RESOLUTION, paper_mobile=1.263, paper_gpu=1.269),
    Claim("ma36_vs_convnext_base", "FastViT-MA36 is 1.9x faster than ConvNeXt-B on mobile, 2.0x on GPU",
          "ma36", "timm:convnext_base", slow_resolution=baselines.RESOLUTION, paper_mobile=1.9, paper_gpu=2.0),
    # "at Top-1 accuracy of 84.9%": MA36 at 384px; NFNet-F1 at the 320px it is tested at
    Claim("ma36_vs_nfnet_f1", "FastViT-MA36 (384px) is just as fast as NFNet-F1 (320px) on GPU and 42.8% faster "
          "on mobile", "ma36", "timm:dm_nfnet_f1", fast_resolution=384, slow_resolution=320, paper_mobile=1.428,
          paper_gpu=1.0, as_fast_on=("gpu",)),
    Claim("sa24_vs_caformer_s18", "FastViT-SA24 (3.8 GMACs, 82.7%) must beat CAFormer-S18 (4.1 GMACs, 83.6%) "
          "on speed to be the better choice", "sa24", "timm:caformer_s18", slow_resolution=baselines.RESOLUTION,
          source="the seed review"),
    *(Claim(f"reparam_{v}", f"reparameterized FastViT-{v.upper()} is faster than its training form", v, v,
            slow_form="train", source="the paper's premise") for v in fastvit.list_models()),
)


def claim_models(where: str | None = None) -> list[tuple[str, int]]:
    """(model, resolution) of both sides of every claim between two architectures (those the paper timed on
    fabric `where`, and those it gives no figure for, when `where` is given): what `harness run --protocol` sweeps."""
    found = []
    for claim in CLAIMS:
        if claim.fast_form != "reparam" or claim.slow_form != "reparam":
            continue
        if where and claim.figures and where not in claim.figures:
            continue
        found += [(claim.fast, claim.fast_resolution), (claim.slow, claim.slow_resolution)]
    return list(dict.fromkeys(found))


@dataclass
class Check:
    claim: Claim
    host: str
    target: str
    threads: int
    precision: str
    batch: int = 1
    fast_ms: float | None = None
    slow_ms: float | None = None
    runs: tuple[int, int] = (0, 0)  # processes behind (fast, slow)
    speedup: float | None = None
    low: float | None = None
    high: float | None = None
    verdict: str = "not enough data"
    missing: str | None = None  # with "not enough data": which run is missing, and how to make it
    noisy: bool = False  # a run on either side was timed while other work used the CPU
    lacks: tuple[str, int, str] | None = None  # with "not enough data" on a target: (model, resolution, form)
    origin: str = "measured"  # of the runs on that target: measured, imported or published
    backend: str = ""
    device: str = ""
    form: str | None = None  # where a published table timed both models in another form than the claim's: that form
    source: str | None = None  # how a published table names its conditions ("RTX 4090, AMP (fp16), ...")

    @property
    def figure(self) -> tuple[float, bool]:
        """(the speedup the paper claims where this check ran, whether it claims 'as fast')."""
        return self.claim.figure_on(fabric(self.device))

    @property
    def paper_protocol(self) -> bool:
        """Timed under the conditions the paper timed this device's fabric under."""
        found = PAPER_PROTOCOLS.get(fabric(self.device) or "")
        return bool(found and found.matches(self.device, self.precision, self.batch))

    @property
    def protocol(self) -> str:
        """The conditions both sides were timed under: precision, batch, target (and the paper's, where so)."""
        if self.target == "—":
            return "—"
        if self.source:
            label = f"{self.source}, batch {self.batch}"
        else:
            label = f"{self.precision}, batch {self.batch}, {self.target_name}"
        label += f", {FORM_NAMES.get(self.form, self.form)}" if self.form else ""
        return label + (" (the paper's protocol)" if self.paper_protocol else "")

    @property
    def target_name(self) -> str:
        """The target without the precision the labelled target carries (the protocol names it)."""
        return self.target.removesuffix(f" {self.precision}")

    @property
    def claimed_here(self) -> str:
        """What the verdict was judged against: the paper's figure for the device's fabric (or the weakest)."""
        figure, as_fast = self.figure
        where = fabric(self.device)
        text = "as fast" if as_fast else f"{figure}x" if figure != 1.0 else "faster"
        return text + (f" ({'GPU' if where == 'gpu' else where})" if where in self.claim.figures else " (weakest)")

    @property
    def single_process(self) -> bool:
        """A verdict resting on one process of this harness on either side (no --repeats): fragile on a shared
        machine. A published or imported figure is what its source gives, a process or not."""
        return self.verdict != "not enough data" and min(self.runs) == 1 and self.origin == "measured"


def _latest(session: Session, model: str, resolution: int, form: str, *criteria) -> dict[tuple, list[Run]]:
    """Valid runs of one model spec per protocol (host, target, threads, precision, batch): all the runs of
    the latest sweep that timed it (several with `harness run --repeats`), or the latest single run. The paper's
    claims are judged on each runtime's own recipes: a mixed int8 recipe (runs.keep_float) is not one of them."""
    return {(runs[-1].host_id, runs[-1].target, runs[-1].threads, runs[-1].precision, runs[-1].batch): runs
            for runs in latest_repeats(session, Run.model == model, Run.resolution == resolution, Run.form == form,
                                       Run.keep_float == "", *criteria)}


FORM_NAMES = {"train": "training form", "reparam": "fused form"}


def _published(session: Session, model: str, resolution: int, form: str) -> dict[tuple, list[Run]]:
    """Published runs of a model in `form`, and where the model has nothing to fuse (its rows say so: forms_alike)
    its one form's runs, which time that form too."""
    found = _latest(session, model, resolution, form, Run.published.is_(True))
    for key, runs in _latest(session, model, resolution, "reparam" if form == "train" else "train",
                             Run.published.is_(True)).items():
        if key not in found and (runs[-1].environment or {}).get("forms_alike"):
            found[key] = runs
    return found


def _published_in(claim: Claim) -> tuple[str, ...]:
    """The forms a published table may have timed both models of `claim` in and be judged in: the claim's own, and
    for a claim between two architectures (both fused) the training form too, which a library that does not fuse
    (timm's benchmark without --reparam) times; such a check is labelled with its form."""
    if claim.fast_form == claim.slow_form == "reparam" and claim.fast != claim.slow:
        return ("train",)
    return ()


def compare(fast: list[np.ndarray], slow: list[np.ndarray], seed: int = 0) -> tuple[float, float, float]:
    """Speedup median(slow)/median(fast) with a 95% interval.

    With several runs (processes) per side the interval resamples the runs' medians: on this kind
    of machine a new process can land 20-50% away from the last one, far outside any single run's
    own interval. With one run per side it resamples that run's iterations.
    """
    if len(fast) > 1 and len(slow) > 1:
        return ratio_of_medians([np.median(x) for x in slow], [np.median(x) for x in fast], seed)
    return ratio_of_medians(np.concatenate(slow), np.concatenate(fast), seed)


def _timed(session: Session, run: Run) -> np.ndarray:
    rows = session.scalars(select(Sample.latency_ns).where(Sample.run_id == run.id, Sample.phase == "timed"))
    return np.fromiter(rows, dtype=np.float64)


# A stored run's samples never change, so the interval of two sets of runs (by their UUIDs, unique across every
# database) is computed once per process: the dashboard asks again on every page load, and a new run is a new
# key. Bounded: the oldest entries go first.
_INTERVALS: dict[tuple, tuple[float, float, float] | None] = {}
_INTERVALS_KEPT = 20_000


def _interval(session: Session, fast: list[Run], slow: list[Run]) -> tuple[float, float, float] | None:
    """compare() of the two sides' timed samples, or None where a run stored none (a vendor tool's statistics)."""
    key = (tuple(r.uuid for r in fast), tuple(r.uuid for r in slow))
    if key not in _INTERVALS:
        fs, ss = [_timed(session, r) for r in fast], [_timed(session, r) for r in slow]
        if len(_INTERVALS) >= _INTERVALS_KEPT:
            del _INTERVALS[next(iter(_INTERVALS))]
        _INTERVALS[key] = compare(fs, ss) if all(x.size for x in fs + ss) else None
    return _INTERVALS[key]


AS_FAST = 0.95  # "just as fast" judged on a point estimate alone (a vendor tool's statistics): within 5%


def verdict(low: float | None, high: float | None, speedup: float, claimed: float, as_fast: bool = False) -> str:
    if as_fast:  # FastViT is not significantly slower
        reached = speedup >= AS_FAST if low is None else high >= 1.0
        return "holds" if reached else "does not hold"
    if low is None:  # statistics only (a vendor tool's run): judge the point estimate
        return "holds" if speedup >= claimed and speedup > 1 else "does not hold"
    return "holds" if low > 1.0 and high >= claimed else "does not hold"


def check_all(engine) -> list[Check]:
    checks = []
    with Session(engine) as session:
        hosts = {h.id: h.hostname for h in session.scalars(select(Host))}
        # a published table is copied once: a form it does not hold will never be there (Apple's holds
        # fused models only, so the fused-vs-training claims are not asked of it)
        published_forms: dict[tuple, set[str]] = {}
        for host_id, target, form in session.execute(select(Run.host_id, Run.target, Run.form).where(
                Run.published.is_(True)).distinct()):
            published_forms.setdefault((host_id, target), set()).add(form)
        found = _Found(session, hosts, published_forms)
        for claim in CLAIMS:
            fast = _latest(session, claim.fast, claim.fast_resolution, claim.fast_form)
            slow = _latest(session, claim.slow, claim.slow_resolution, claim.slow_form)
            if not fast and not slow:  # listed all the same, so every claim shows
                checks.append(Check(claim, "—", "—", 0, "—", missing=_nothing_yet(session, claim)))
            checks += found.checks(claim, fast, slow)
            for form in _published_in(claim):  # published tables that timed both models in another form
                checks += found.checks(claim, _published(session, claim.fast, claim.fast_resolution, form),
                                       _published(session, claim.slow, claim.slow_resolution, form), form)
    return checks


class _Found:
    """Checks of one claim from the runs found of each side per protocol (_latest), in one session."""

    def __init__(self, session: Session, hosts: dict[int, str], published_forms: dict[tuple, set[str]]):
        self.session, self.hosts, self.published_forms = session, hosts, published_forms
        self.resolutions: dict[tuple[str, str], dict] = {}  # per claim side lacking runs: _resolutions

    def checks(self, claim: Claim, fast: dict, slow: dict, form: str | None = None) -> list[Check]:
        """A check per protocol either side has; `form`: both sides' form, where it is not the claim's."""
        found = []
        for key in sorted(set(fast) | set(slow), key=str):
            host_id, _target, threads, precision, batch = key
            runs = fast.get(key, slow.get(key))
            check = Check(claim, self.hosts.get(host_id, str(host_id)), runs[-1].labelled_precise_target, threads,
                          precision, batch, backend=runs[-1].backend, device=runs[-1].device, form=form,
                          source=_source(runs[-1]), origin=runs[-1].origin)
            if key in fast and key in slow:
                self._judge(check, fast[key], slow[key])
            else:
                side = "slow" if key in fast else "fast"
                present = (fast if key in fast else slow)[key][-1]
                model, _, side_form = _side(claim, side, form)
                if present.published and side_form not in self.published_forms.get(
                        (present.host_id, present.target), set()):
                    continue
                if (model, side_form) not in self.resolutions:
                    self.resolutions[(model, side_form)] = _resolutions(self.session, model, side_form)
                check.missing = _missing(self.resolutions[(model, side_form)], claim, side, present, form)
                check.lacks = _side(claim, side, form)
                check.origin = present.origin
            found.append(check)
        return found

    def _judge(self, check: Check, f: list[Run], s: list[Run]) -> None:
        check.runs = (len(f), len(s))
        check.noisy = any(r.noisy for r in f + s)
        check.fast_ms = float(np.median([r.latency_ms for r in f]))
        check.slow_ms = float(np.median([r.latency_ms for r in s]))
        interval = _interval(self.session, f, s)
        if interval:
            check.speedup, check.low, check.high = interval
        else:
            check.speedup = check.slow_ms / check.fast_ms
        check.verdict = verdict(check.low, check.high, check.speedup, *check.figure)


def _source(run: Run) -> str | None:
    """How a published table names its conditions, and whose table it is: 'RTX 4090, AMP (fp16), ..., timm'."""
    environment = run.environment or {}
    if not run.published or not environment.get("protocol"):
        return None
    return ", ".join(filter(None, [environment["protocol"], environment.get("source")]))


def _side(claim: Claim, side: str, form: str | None = None) -> tuple[str, int, str]:
    """(model, resolution, form) of one side of a claim (in `form`, where it is judged in another form)."""
    return ((claim.fast, claim.fast_resolution, form or claim.fast_form) if side == "fast"
            else (claim.slow, claim.slow_resolution, form or claim.slow_form))


def run_command(device: str, backends: list[str], model: str, resolution: int, form: str,
                precision: str = "fp32", batch: int = 1, *more: str, keep_float: str = "") -> str:
    """The `harness run` that times `model` there, in the mixed recipe `keep_float` if any (`more`: further flags,
    e.g. "--repeats auto")."""
    return " ".join(["harness run", f"--device {shlex.quote(device)}", *(f"--backend {b}" for b in backends),
                     f"--model {baselines.short_name(model)}", f"--resolution {resolution}",
                     *(["--form train"] if form == "train" else []),
                     *([f"--precision {precision}"] if precision not in ("fp32", "n/a") else []),
                     *(f"--keep-float {name}" for name in float_classes(keep_float)),
                     *([f"--batch {batch}"] if batch != 1 else []), *more])


def _resolutions(session: Session, model: str, form: str) -> dict[tuple, list[int]]:
    """The resolutions `model` (in `form`) has a valid run at, per protocol (host, target, threads, precision,
    batch): one query for every check a claim side lacks."""
    found: dict[tuple, set[int]] = {}
    for *key, resolution in session.execute(select(
            Run.host_id, Run.target, Run.threads, Run.precision, Run.batch, Run.resolution).where(
            Run.model == model, Run.form == form, Run.status == "ok", Run.keep_float == "").distinct()):
        found.setdefault(tuple(key), set()).add(resolution)
    return {key: sorted(values) for key, values in found.items()}


def _missing(resolutions: dict[tuple, list[int]], claim: Claim, side: str, present: Run, form: str | None = None
             ) -> str:
    """Which run a claim lacks on `present`'s target, runs of that model at other resolutions there
    (`resolutions`: _resolutions of that side), and the command that makes the missing one; for figures taken
    elsewhere, what they hold instead (another batch: a table whose tool lowered the batch for one model)."""
    model, resolution, form = _side(claim, side, form)
    if present.origin != "measured":
        batches = sorted(key[4] for key, found in resolutions.items() if resolution in found and key[:4] == (
            present.host_id, present.target, present.threads, present.precision))
        return (f"{present.origin} figures of {present.target} hold none for {model} at {resolution}px ({form})"
                + (f" at batch {present.batch} (they time it at batch {', '.join(map(str, batches))}; a speedup "
                   "needs both at one batch)" if batches else ""))
    elsewhere = resolutions.get((present.host_id, present.target, present.threads, present.precision,
                                 present.batch), [])
    found = f" (found one at {', '.join(f'{r}px' for r in elsewhere)})" if elsewhere else ""
    batch = f" at batch {present.batch}" if present.batch != 1 else ""
    return (f"no valid run of {model} at {resolution}px ({form}) on {present.precise_target}{batch}{found}: "
            + run_command(present.device, [present.backend], model, resolution, form, present.precision,
                           present.batch))


@dataclass(frozen=True)
class MissingRuns:
    """The 'not enough data' checks of one claim on one host that lack the same run, as one line: the
    run, and the one command that makes it on all those targets."""
    claim: Claim
    host: str
    targets: tuple[str, ...]
    text: str


def missing_runs(checks: list[Check]) -> list[MissingRuns]:
    """`checks` lacking a run, grouped per claim, host, device and the run they lack."""
    groups: dict[tuple, list[Check]] = {}
    for c in checks:
        if c.verdict == "not enough data" and c.lacks is not None:
            groups.setdefault((c.claim.key, c.host, c.origin, c.device, c.precision, c.batch, c.lacks), []).append(c)
    found = []
    for (key, host, origin, device, precision, batch, (model, resolution, form)), group in groups.items():
        targets = tuple(c.target for c in group)
        if len(group) == 1:
            text = group[0].missing
        elif origin != "measured":
            text = f"{origin} figures of these targets hold none for {model} at {resolution}px ({form})"
        else:
            tried = {c.target for c in checks if c.claim.key == key and (c.host, c.origin, c.device, c.precision,
                                                                          c.batch) == (host, origin, device, precision,
                                                                                       batch)}
            backends = [] if tried == set(targets) else list(dict.fromkeys(c.backend for c in group))
            text = (f"no valid run of {model} at {resolution}px ({form}) on {len(group)} targets: "
                    + run_command(device, backends, model, resolution, form, precision, batch))
        found.append(MissingRuns(group[0].claim, host, targets, text))
    return found


def _nothing_yet(session: Session, claim: Claim) -> str:
    """Neither side has a valid run at the claim's resolution anywhere: what exists, and the commands."""
    sides = [_side(claim, side) for side in ("fast", "slow")]
    found = []
    for model, _, form in dict.fromkeys(sides):
        resolutions = sorted(set(session.scalars(select(Run.resolution).where(
            Run.model == model, Run.form == form, Run.status == "ok"))))
        if resolutions:
            found.append(f"{model} ({form}) at {', '.join(f'{r}px' for r in resolutions)}")
    return ("no valid run of " + " or ".join(f"{m} at {r}px ({f})" for m, r, f in sides)
            + (f" (found {'; '.join(found)})" if found else "") + ": "
            + " && ".join(run_command("cpu", [], m, r, f) for m, r, f in sides))
