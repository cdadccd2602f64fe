"""Per-kind kernel cost models, fitted from kernels timed alone, and a whole model's latency predicted from them.

A kernel's time on a CPU runtime is close to a sum of what it computes and what it moves: a constant (the
runtime's calls into the block's ops), its FLOPs over the throughput it reaches, and the elements it reads and
writes (activations, weights) over the bandwidth. So each kind gets

    ms = c0 + c1 * GFLOPs + c2 * M activation elements + c3 * M weights + c4 * M attention scores   (every c >= 0)

(the last: the elements of an attention block's score matrices, heads x tokens^2, which its softmax reads and
writes; zero for every other kind) fitted by non-negative least squares on relative error (each row divided by
its time as timed, so a 0.05 ms kernel counts as much as a 5 ms one; as timed, overhead included, because a kernel
faster than the empty-model probe has a net time of about zero, and dividing by that let one such kernel pin every
coefficient at zero). A handful of numbers per kind: stored as data, read back by any version, and
extrapolating the way physics does rather than the way a tree ensemble does not. A model's prediction is the
runtime's per-call overhead once (the empty-model probe) plus each kernel's time net of the overhead its own
timing paid, times its count.

A kernel alone is not a kernel in a model: alone its activations and weights stay in the caches call after
call, and it pays the runtime's layout conversions at its own edges, which a model pays once (LiteRT's whole
models ran 14 % slower than their kernels' sum, OpenVINO's small ones faster). So a fit may also time a few
whole models (sampled configurations, never a model it is judged on) and learn one correction for what the
kernel sum misses, in the terms that scale with it: the activations it moves, the weights it reads and, where
those models bear it out (WHOLE_FORMS), the kernel calls it makes (kind WHOLE; its leave-one-out error on those
models is the prediction's interval).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# A fit stores as many coefficients as its method had terms; a term added later is appended, so an older fit
# predicts with the terms it was fitted on (KindCost.ms). block-nnls-2 had the first four.
TERMS = ("calls", "gflops", "m_activations", "m_weights", "m_attention_scores")
WHOLE = "whole_model"  # not a kernel kind: the correction fitted on whole models timed for the fit
# The forms it may take, each the TERMS it is fitted on, summed over the model's kernels; a fit keeps the one whose
# leave-one-out error over its whole models is least (fit_whole). Kernel calls (each block's dispatch, paid
# differently in a model than alone) lifted ExecuTorch from 93 to 95 % of the held-out models within 10 % with
# block-nnls-3; on OpenVINO, whose small models run faster than their kernels' sum, they over-correct the smallest
# (1.4 ms models predicted 30-40 % high), and its leave-one-out error without them is 6.9 % against 10.6 %.
WHOLE_FORMS = ((0, 2, 3), (2, 3))
WHOLE_AT_LEAST = max(len(form) for form in WHOLE_FORMS) + 1  # whole models timed to calibrate: more than terms


def terms(kernel) -> list[float]:
    """A kernel's (harness.predict.kernels.Kernel) regressors, in TERMS order."""
    return [1.0, kernel.flops / 1e9, (kernel.input_elements + kernel.output_elements) / 1e6, kernel.params / 1e6,
            kernel.attention_scores / 1e6]


@dataclass(frozen=True)
class Sample:
    """One kernel timed alone: its kind, its regressors (TERMS), its median net of the per-call overhead, and the
    median as timed (what its relative error is relative to)."""
    kind: str
    signature: str
    x: tuple[float, ...]
    ms: float
    timed_ms: float

    def error(self, predicted_ms: float) -> float:
        """A net prediction's error relative to the kernel's time as timed."""
        return (predicted_ms - self.ms) / self.timed_ms


@dataclass
class KindCost:
    coef: list[float]  # TERMS order
    samples: int
    cv_errors: list[float] = field(default_factory=list)  # leave-one-out relative errors (Sample.error)

    def ms(self, x) -> float:
        return float(np.dot(self.coef, list(x)[:len(self.coef)]))

    def error_quantile(self, q: float = 0.9) -> float:
        return float(np.quantile(np.abs(self.cv_errors), q)) if self.cv_errors else float("nan")


def fit_kind(samples: list[Sample]) -> list[float]:
    """Non-negative coefficients minimising the squared relative error (Sample.error) over `samples`."""
    from scipy.optimize import nnls

    x = np.array([s.x for s in samples], dtype=float)
    y = np.array([s.ms for s in samples], dtype=float)
    scale = x.max(axis=0)  # columns on one scale: nnls converges on a well-conditioned problem
    scale[scale == 0] = 1.0
    weights = 1.0 / np.array([s.timed_ms for s in samples], dtype=float)
    coef, _ = nnls(x / scale * weights[:, None], y * weights)
    return list(coef / scale)


def fit(samples: list[Sample]) -> dict[str, KindCost]:
    """A cost model per kind, with each sample's leave-one-out relative error (how the model does on a kernel
    it has not seen: what adaptive sampling and the prediction interval read)."""
    by_kind: dict[str, list[Sample]] = {}
    for sample in samples:
        by_kind.setdefault(sample.kind, []).append(sample)
    found = {}
    for kind, mine in by_kind.items():
        if len(mine) < len(TERMS):
            raise ValueError(f"{kind}: {len(mine)} kernels timed, at least {len(TERMS)} needed to fit")
        errors = []
        for i, left_out in enumerate(mine):
            coef = fit_kind(mine[:i] + mine[i + 1:])
            errors.append(left_out.error(float(np.dot(coef, left_out.x))))
        found[kind] = KindCost(fit_kind(mine), len(mine), errors)
    return found


def model_terms(kernels: list) -> list[float]:
    """A model's regressors (TERMS order): each kernel's, times its count, summed."""
    total = [0.0] * len(TERMS)
    for kernel in kernels:
        total = [t + kernel.count * x for t, x in zip(total, terms(kernel))]
    return total


@dataclass(frozen=True)
class WholeSample:
    """A whole model timed for the fit: its summed regressors (model_terms), what the kernels alone predict for
    it (overhead included), and its median as timed."""
    name: str
    x: tuple[float, ...]
    kernel_ms: float
    ms: float


def _fit_whole(samples: list[WholeSample], form: tuple[int, ...]) -> list[float]:
    """TERMS-order coefficients, non-zero on `form` only and of either sign (a runtime's model may run slower or
    faster than its kernels alone), minimising the whole models' squared relative error."""
    x = np.array([[s.x[i] for i in form] for s in samples], dtype=float)
    y = np.array([s.ms - s.kernel_ms for s in samples], dtype=float)
    weights = 1.0 / np.array([s.ms for s in samples], dtype=float)
    found, *_ = np.linalg.lstsq(x * weights[:, None], y * weights, rcond=None)
    coef = [0.0] * len(TERMS)
    for i, value in zip(form, found):
        coef[i] = float(value)
    return coef


def _loo_errors(samples: list[WholeSample], form: tuple[int, ...]) -> list[float]:
    """Each whole model's relative error, corrected by the form fitted on the others."""
    errors = []
    for i, left_out in enumerate(samples):
        coef = _fit_whole(samples[:i] + samples[i + 1:], form)
        errors.append((left_out.kernel_ms + float(np.dot(coef, left_out.x))) / left_out.ms - 1)
    return errors


def fit_whole(samples: list[WholeSample]) -> KindCost:
    """The whole-model correction (kind WHOLE) in the form (WHOLE_FORMS) with the least leave-one-out error over
    `samples` (root mean square; the first form on a tie), with each model's leave-one-out error in it. The
    error of the form chosen is a little optimistic: it was chosen for being least."""
    if len(samples) < WHOLE_AT_LEAST:
        raise ValueError(f"{len(samples)} whole models timed; {WHOLE_AT_LEAST} needed to calibrate")
    errors = {form: _loo_errors(samples, form) for form in WHOLE_FORMS}
    form = min(WHOLE_FORMS, key=lambda f: float(np.mean(np.square(errors[f]))))  # min keeps the first on a tie
    return KindCost(_fit_whole(samples, form), len(samples), errors[form])


@dataclass(frozen=True)
class Part:
    signature: str
    kind: str
    count: int
    ms: float  # all its calls, net of the overhead


@dataclass(frozen=True)
class Prediction:
    ms: float
    low_ms: float
    high_ms: float
    overhead_ms: float
    parts: list[Part]


def predict(costs: dict[str, KindCost], kernels: list, overhead_ms: float, q: float = 0.9) -> Prediction:
    """A model's latency from its kernels (harness.predict.kernels.model_kernels) and an interval: each
    kernel's leave-one-out error at quantile `q` of its kind, the same error for every call of one kernel,
    independent between kernels. Where the fit calibrated on whole models (kind WHOLE), its correction is one
    more part and the interval is its whole models' leave-one-out error at `q`: what it measured, not a sum."""
    missing = sorted({k.kind for k in kernels} - set(costs))
    if missing:
        raise ValueError(f"no cost model for {', '.join(missing)}: fit with kernels of those kinds")
    parts, spread = [], 0.0
    for kernel in kernels:
        cost = costs[kernel.kind]
        ms = max(cost.ms(terms(kernel)), 0.0) * kernel.count
        parts.append(Part(kernel.signature, kernel.kind, kernel.count, ms))
        spread += (ms * cost.error_quantile(q)) ** 2
    total = overhead_ms + sum(p.ms for p in parts)
    half = math.sqrt(spread)
    whole = costs.get(WHOLE)
    if whole is not None:
        correction = max(whole.ms(model_terms(kernels)), overhead_ms - total)  # never below the empty model
        parts.append(Part("whole-model correction (fitted on whole models)", WHOLE, 1, correction))
        total += correction
        half = total * whole.error_quantile(q)
    return Prediction(total, max(total - half, overhead_ms), total + half, overhead_ms, parts)
