"""Planning what a command measures, in one place for `run`, `run --cluster`, `layers`, `export` and `coverage`:
the model specs (those asked for, or a protocol's), the checks that refuse bad input in one sentence before
anything starts or is stored, the targets a device offers, and the jobs (each spec on each target, or each
distinct layer of one spec alone)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import fastvit
from backends import BACKENDS, Backend

from .. import baselines
from ..protocol import LOW_PRECISIONS, MAX_OTHER_CPU, MAX_STEAL, Job, TimingPolicy
from ..spec import FORMS, Form, ModelSpec, Precision, Target, canonical_model
from .memory import check_fits
from .targets import plan_targets

DEFAULT_CACHE = Path(os.environ.get("HARNESS_CACHE", "artifacts"))
DEFAULT_MODELS = ["t8", "s12", "sa12"]


def protocol_sweep(name: str, device: str, models: list[str] | None, resolution: int | None,
                   precision: Precision, batch: int, form: Form) -> tuple[Precision, int, list[tuple[str, int]]]:
    """(precision, batch, [(model, resolution)]) of `harness run --protocol NAME` on `device`; ValueError for an
    option the protocol decides itself, or a device the paper timed nothing like."""
    from ..analysis.claims import PAPER_PROTOCOLS, claim_models, fabric

    if models or resolution is not None:
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


def model_specs(models: list[str] | None, resolution: int | None, batch: int, form: Form, weights: str,
                precision: Precision = Precision.fp32, protocol: str | None = None, device: str = "cpu"
                ) -> tuple[Precision, list[ModelSpec]]:
    """(precision, specs) a sweep times: each model asked for (default DEFAULT_MODELS) at `resolution` or its
    own, in `form` ('both': each form), or the models, precision and batch of a protocol. ValueError for a
    model, resolution or batch no spec can have."""
    forms = FORMS if form.value == "both" else (form.value,)
    if protocol:
        precision, batch, chosen = protocol_sweep(protocol, device, models, resolution, precision, batch, form)
    else:
        own = baselines.own_resolution()
        chosen = [(m, resolution if resolution is not None else own(canonical_model(m)))
                  for m in (models or DEFAULT_MODELS)]
    return precision, [ModelSpec(m, r, batch, f, weights) for m, r in chosen for f in forms]


def check(specs: list[ModelSpec], cache_dir: Path, precision: str = "fp32", calibration: Path | None = None,
          eval_dir: Path | None = None) -> None:
    """Every check a command makes before it starts: the specs, the artifact cache, the images; ValueError."""
    check_cache(cache_dir)
    check_specs(specs, cache_dir)
    check_images(specs, precision, calibration, eval_dir)


def check_specs(specs: list[ModelSpec], cache_dir: Path) -> None:
    """ValueError, in one sentence, for a spec no worker could build or this machine cannot hold:
    checked once per model, before anything starts or is stored."""
    checked, sizes = set(), {}
    for spec in specs:
        if spec.is_baseline and not spec.weights.startswith("random:"):
            raise ValueError("baselines run with random weights only (--weights random:<seed>)")
        if not spec.is_baseline and not spec.weights.startswith("random:") and (spec.model, spec.weights) not in checked:
            check_checkpoint(spec)
            checked.add((spec.model, spec.weights))
        sizes.setdefault((spec.model, spec.resolution, spec.batch), spec)
    check_fits(list(sizes.values()), cache_dir)  # and that each builds (a timm baseline by that name)


def check_cache(cache_dir: Path) -> None:
    """ValueError unless the artifact cache (and its failed-jobs folder) can be written."""
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as exc:
        raise ValueError(f"--cache: cannot write the artifact cache at {cache_dir} ({exc.strerror})") from exc


def check_checkpoint(spec: ModelSpec) -> None:
    """The checkpoint loads into the spec's variant (the worker would fail on each target otherwise)."""
    if not Path(spec.weights).is_file():
        raise ValueError(f"--weights: no such checkpoint file {spec.weights!r} (or use random:<seed>)")
    try:
        fastvit.load_checkpoint(fastvit.create_model(spec.model), spec.weights)
    except fastvit.CheckpointError as exc:
        raise ValueError(f"--weights {spec.weights}: {exc}") from exc


def _absolute(folder: Path | None) -> str | None:
    return str(Path(folder).resolve()) if folder is not None else None


def plan_jobs(specs: list[ModelSpec], targets: list[Target], *, threads: int, policy: TimingPolicy,
              cache_dir: Path, precision: str = "fp32", profile_iterations: int = 0,
              max_other_cpu: float = MAX_OTHER_CPU, max_steal: float = MAX_STEAL, calibration: Path | None = None,
              eval_dir: Path | None = None, retry_failed: bool = False, cold_compile: bool = False,
              keep_float: str = "") -> list[Job]:
    """One job per (model spec, target); run_sweep repeats them."""
    cache = str(Path(cache_dir).resolve())
    return [Job(spec, target, threads, policy, cache, precision, profile_iterations, max_other_cpu, max_steal,
                calibration=_absolute(calibration), eval_dir=_absolute(eval_dir), retry_failed=retry_failed,
                cold_compile=cold_compile, keep_float=keep_float)
            for spec in specs for target in targets]


def plan_layer_jobs(spec: ModelSpec, layers: list, targets: list[Target], *, threads: int, policy: TimingPolicy,
                    cache_dir: Path, precision: str = "fp32", calibration: Path | None = None,
                    keep_float: str = "") -> list[Job]:
    """`harness layers`: per target, the runtime's empty-model probe first, then each distinct layer
    of `spec` (harness.measure.layers.Layer) alone."""
    from ..opclass import OVERHEAD_SIGNATURE
    from ..protocol import OVERHEAD

    cache = str(Path(cache_dir).resolve())
    probes = [(OVERHEAD, OVERHEAD_SIGNATURE, 0), *((layer.path, layer.signature, layer.count) for layer in layers)]
    return [Job(spec, target, threads, policy, cache, precision, layer=path, layer_signature=sig, layer_count=count,
                calibration=_absolute(calibration), keep_float=keep_float)
            for target in targets for path, sig, count in probes]


def check_images(specs: list[ModelSpec], precision: str, calibration: Path | None, eval_dir: Path | None) -> None:
    """ValueError, in one line, when the images a sweep needs are missing or unreadable: the calibration set of
    a low precision, the --eval folder (which only means something with real weights)."""
    from .images import ImageSetError, calibration_set, held_out_set, labelled_set

    resolution = specs[0].resolution if specs else 256
    try:
        held_out_set(resolution)
        if precision in LOW_PRECISIONS:
            calibration_set(resolution, calibration)
        elif calibration is not None:
            raise ValueError(f"--calibration is for int8; --precision {precision} calibrates nothing")
        if eval_dir is not None:
            if any(spec.weights.startswith("random:") for spec in specs):
                raise ValueError("--eval measures accuracy, which random weights do not have: pass --weights "
                                 "CHECKPOINT too")
            labelled_set(eval_dir, resolution)
    except ImageSetError as exc:
        raise ValueError(str(exc)) from None




@dataclass(frozen=True)
class JobSettings:
    """How every job of a plan is timed, checked and stored (the options `harness run` and `layers` share)."""
    threads: int
    policy: TimingPolicy
    cache_dir: Path = DEFAULT_CACHE
    profile_iterations: int = 0
    max_other_cpu: float = MAX_OTHER_CPU
    max_steal: float = MAX_STEAL
    calibration: Path | None = None
    eval_dir: Path | None = None
    retry_failed: bool = False  # a farm's kept failures (a compile refused) are submitted again
    cold_compile: bool = False  # torch.compile compiles cold again, though a cold compile of the same key is kept
    keep_float: str = ""  # a mixed int8 recipe's op classes kept in float (harness.measure.recipe)


@dataclass
class Plan:
    targets: list[Target]
    skipped: list[tuple[Target, str]]  # and the one-line reason each is not available
    jobs: list[Job] = field(default_factory=list)


def plan(specs: list[ModelSpec], device: str, backends: list[str] | None, precision: str, settings: JobSettings,
         delegate: str = "xnnpack", compile_mode: str | None = None,
         targets: tuple[list[Target], list[tuple[Target, str]]] | None = None, layers: list | None = None) -> Plan:
    """The targets of `device` (narrowed to `backends`; `targets`: those an agent of a lab planned itself) and the
    jobs on them: each spec on each target, or with `layers` each of those layers of the one spec alone."""
    runnable, skipped = targets if targets is not None else plan_targets(device, backends, precision, delegate,
                                                                         compile_mode, settings.keep_float)
    found = Plan(runnable, skipped)
    options = dict(threads=settings.threads, policy=settings.policy, cache_dir=settings.cache_dir,
                   precision=precision, calibration=settings.calibration, keep_float=settings.keep_float)
    if layers is not None:
        found.jobs = plan_layer_jobs(specs[0], layers, runnable, **options)
    else:
        found.jobs = plan_jobs(specs, runnable, profile_iterations=settings.profile_iterations,
                               max_other_cpu=settings.max_other_cpu, max_steal=settings.max_steal,
                               eval_dir=settings.eval_dir, retry_failed=settings.retry_failed,
                               cold_compile=settings.cold_compile, **options)
    return found


def coverage_backends(names: list[str] | None, precision: str, keep_float: str = ""
                      ) -> tuple[list[Backend], list[tuple[Backend, str]]]:
    """The backends `harness coverage` reads (those named, or every one that can answer) and those refused, each
    with why: in fp32 a delegating backend's partitioner, in a low precision what its quantizer kept in float (with
    a mixed recipe `keep_float`, only quantizers that can leave chosen ops in float)."""
    from .artifacts import check_exportable

    named = [BACKENDS[n] for n in names] if names else None
    if precision not in LOW_PRECISIONS:
        chosen = named or [b for b in BACKENDS.values() if b.partitioner]
        if refused := [b for b in chosen if not b.partitioner]:
            why = (f"{', '.join(b.name for b in refused)} run whole graphs themselves; delegation applies to "
                   f"{', '.join(b.name for b in BACKENDS.values() if b.partitioner)}")
            return [], [(refused[0], why)]
        return chosen, []
    chosen, refused = [], []
    for candidate in named or [b for b in BACKENDS.values() if precision in b.precisions]:
        try:
            if keep_float and not candidate.keeps_float:
                raise ValueError("its int8 quantizer cannot keep chosen ops in float (--keep-float)")
            check_exportable(candidate, precision)
            chosen.append(candidate)
        except ValueError as exc:
            refused.append((candidate, str(exc)))
    return chosen, refused
