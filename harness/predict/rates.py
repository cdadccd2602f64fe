"""A predictor for a device the harness cannot time kernels on, fitted from the per-operator profiles it has of
whole models (an imported benchmark_model op profile, an ETDump, an AI Hub job's per-layer times, or its own).

A profile says how long each op class took (harness.opclass) in one model; the model's FLOPs per class and the
elements its layers write are computed here from its spec. Each class that does arithmetic gets one rate, its
milliseconds per GFLOP over every profile together; the classes that do none (norms, activations, element-wise
ops, reshapes, pooling) share one rate per million elements written. The sum of the rates times a new model's
own FLOPs and elements, scaled by how much of each profiled model's whole latency its profile accounts for,
is the prediction. It cannot see what the kernel fit sees (a 1x1 convolution on 32 channels runs far below the
rate of one on 512), so it is a coarser predictor; what it gets right on held-out models is measured beside the
kernel fit (benchmarks/predict.py, stage judge), where the truth is known.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .fit import KindCost, Part, Prediction

METHOD = "op-class-rates-1"
FLOP_CLASSES = ("conv_dw_3x3", "conv_dw_7x7", "conv_dw_other", "conv_pointwise", "conv_dense", "linear",
                "attention_matmul")
MEMORY = "memory-bound ops"  # every class without FLOPs, one rate per million elements written
ELEMENTS = "elements"  # the feature MEMORY's rate multiplies (millions of elements the model's layers write)


@dataclass(frozen=True)
class Profile:
    """One profiled model: its whole latency, each op class's time in its profile, and its features (FLOPs per
    class, ELEMENTS: the elements its leaf layers write)."""
    name: str
    latency_ms: float
    class_ms: dict[str, float]
    features: dict[str, float]

    @property
    def profiled_ms(self) -> float:
        return sum(self.class_ms.values())


DEPTHWISE = ("conv_dw_3x3", "conv_dw_7x7", "conv_dw_other")
ANY_DEPTHWISE = "conv_dw (any kernel)"  # one rate for all three, where a profile does not tell them apart


def _pooled(values: dict[str, float]) -> dict[str, float]:
    pooled = {cls: v for cls, v in values.items() if cls not in DEPTHWISE}
    pooled[ANY_DEPTHWISE] = sum(values.get(cls, 0.0) for cls in DEPTHWISE)
    return pooled


def _pools_depthwise(profiles: list[Profile]) -> bool:
    """A profile that files depthwise time under conv_dw_other while its model has none of that kind: the runtime
    does not name the kernel size (XNNPACK's "DWConv"), so 3x3 and 7x7 can only share a rate."""
    return any(p.class_ms.get("conv_dw_other", 0) > 0 and not p.features.get("conv_dw_other") for p in profiles)


def _rates(profiles: list[Profile]) -> dict[str, float]:
    """Per feature: milliseconds per GFLOP (per million elements for MEMORY), scaled to the whole latency."""
    scale = sum(p.latency_ms for p in profiles) / sum(p.profiled_ms for p in profiles)
    classes = FLOP_CLASSES
    if _pools_depthwise(profiles):
        profiles = [Profile(p.name, p.latency_ms, _pooled(p.class_ms), _pooled(p.features)) for p in profiles]
        classes = (ANY_DEPTHWISE,) + tuple(cls for cls in FLOP_CLASSES if cls not in DEPTHWISE)
    rates, memory_ms = {}, 0.0
    for cls in classes:
        ms = sum(p.class_ms.get(cls, 0.0) for p in profiles)
        gflops = sum(p.features.get(cls, 0.0) for p in profiles) / 1e9
        if gflops > 0:
            rates[cls] = scale * ms / gflops
        else:  # time a runtime files under a class its models compute nothing in (its own op naming): data moved
            memory_ms += ms
    memory_ms += sum(ms for p in profiles for cls, ms in p.class_ms.items() if cls not in classes)
    elements = sum(p.features.get(ELEMENTS, 0.0) for p in profiles) / 1e6
    if elements > 0:
        rates[MEMORY] = scale * memory_ms / elements
    return rates


def _apply(rates: dict[str, float], features: dict[str, float]) -> list[Part]:
    if ANY_DEPTHWISE in rates:
        features = _pooled(features)
    missing = sorted(cls for cls, value in features.items() if value > 0 and cls != ELEMENTS and cls not in rates)
    if missing:
        raise ValueError(f"no profile has {', '.join(missing)}: profile a model that runs it on this target")
    parts = [Part(cls, "op class", 1, rate * features.get(cls, 0.0) / 1e9)
             for cls, rate in rates.items() if cls != MEMORY]
    parts.append(Part(MEMORY, "op class", 1, rates.get(MEMORY, 0.0) * features.get(ELEMENTS, 0.0) / 1e6))
    return parts


def fit_rates(profiles: list[Profile]) -> dict[str, KindCost]:
    """Rates from `profiles` as kind costs (a one-term coefficient per class), each with the leave-one-profile-out
    relative errors of whole-model latency (none with a single profile)."""
    if not profiles:
        raise ValueError("no op profile to fit from")
    if any(p.profiled_ms <= 0 or p.latency_ms <= 0 for p in profiles):
        raise ValueError("a profile with no time in it: " + ", ".join(p.name for p in profiles if p.profiled_ms <= 0))
    errors = []
    for i, left_out in enumerate(profiles):
        rest = profiles[:i] + profiles[i + 1:]
        try:
            guess = sum(part.ms for part in _apply(_rates(rest), left_out.features)) if rest else None
        except ValueError:  # it runs a class no other profile has
            continue
        if guess is not None:
            errors.append(guess / left_out.latency_ms - 1)
    return {cls: KindCost([rate], len(profiles), list(errors)) for cls, rate in _rates(profiles).items()}


def predict_rates(costs: dict[str, KindCost], features: dict[str, float], q: float = 0.9) -> Prediction:
    """A model's latency from its features and the rates; the interval is the profiles' leave-one-out error at
    quantile `q` (an unknown spread, so no interval, from a single profile)."""
    parts = _apply({cls: cost.coef[0] for cls, cost in costs.items()}, features)
    total = sum(p.ms for p in parts)
    error = next(iter(costs.values())).error_quantile(q) if costs else math.nan
    if math.isnan(error):  # NaN bounds: no interval
        return Prediction(total, math.nan, math.nan, 0.0, parts)
    return Prediction(total, max(total - total * error, 0.0), total + total * error, 0.0, parts)


def profile_of(run) -> Profile:
    """A profiled run (harness.analysis.predict.ProfiledRun) with its model's features: one forward pass."""
    return Profile(f"{run.spec.model}@{run.spec.resolution}", run.latency_ms, run.class_ms, spec_features(run.spec))


def spec_features(spec) -> dict[str, float]:
    """A model spec's FLOPs per op class and the elements its leaf layers write (ELEMENTS): one forward pass."""
    import torch

    from ..measure.flops import class_flops
    from ..spec import example_input

    model = spec.build().eval()
    written = [0]

    def count(_module, _args, output):
        if isinstance(output, torch.Tensor):
            written[0] += output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not any(True for _ in m.children())]
    try:
        found: dict[str, float] = {cls: float(f) for cls, f in class_flops(model, example_input(spec)).items()}
    finally:
        for hook in hooks:
            hook.remove()
    found[ELEMENTS] = float(written[0])
    return found

