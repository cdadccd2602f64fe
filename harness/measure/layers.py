"""A model split into its distinct layers, each exportable and timeable alone (`harness layers`).

A layer is a unit a runtime runs as one kernel or a few: a convolution (with the BatchNorm that
follows it, which every runtime folds), a linear layer, an attention block. Its signature is what
decides its cost: op, kernel, stride, groups, channels and input shape. Layers with the same
signature are timed once and counted. Runtimes with no profiler (LiteRT on a host, Core ML outside
Xcode) get an attribution this way too; the price is that a layer alone misses the fusions and
memory traffic between layers, so the sum of layers is reported against the whole model.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..opclass import OVERHEAD_SIGNATURE, conv_class, signature_class  # noqa: F401 (the layers' names)
from ..protocol import COMPOSED, LAYER_POLICY, OVERHEAD  # noqa: F401 (a layer job's names and policy)
from ..spec import ModelSpec, example_input



@dataclass(frozen=True)
class Layer:
    signature: str
    path: str  # the first module with this signature, in the built model of the spec
    count: int  # how many times the model runs it
    op_class: str
    input_shape: tuple[int, ...]


def _unit_kind(module: torch.nn.Module) -> str | None:
    name = type(module).__name__
    if name == "ConvBN" or isinstance(module, torch.nn.Conv2d):
        return "conv"
    if isinstance(module, torch.nn.Linear):
        return "linear"
    if name.endswith("Attention") and "Block" not in name:
        return "attention"
    return None


def _conv_of(module: torch.nn.Module) -> torch.nn.Conv2d:
    return module if isinstance(module, torch.nn.Conv2d) else next(
        m for m in module.modules() if isinstance(m, torch.nn.Conv2d))


def signature(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[str, str]:
    """(signature, op class) of a unit module called on an input of `shape`."""
    where = "x".join(map(str, shape))
    kind = _unit_kind(module)
    if kind == "conv":
        conv = _conv_of(module)
        k, depthwise = conv.kernel_size[0], conv.groups > 1 and conv.groups == conv.in_channels
        label = "dw" if depthwise else ("grouped " if conv.groups > 1 else "")
        bn = "+bn" if type(module).__name__ == "ConvBN" else ""
        return (f"{label}conv{k}x{k}{bn} s{conv.stride[0]} g{conv.groups} {conv.in_channels}->{conv.out_channels} "
                f"@{where}", conv_class(k, depthwise))
    if kind == "linear":
        return f"linear {module.in_features}->{module.out_features} @{where}", "linear"
    return f"{type(module).__name__} @{where}", "attention_block"


def _units(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Every unit module by path; the modules inside a unit are not units of their own."""
    found: dict[str, torch.nn.Module] = {}
    for path, module in model.named_modules():
        if any(path.startswith(p + ".") for p in found):
            continue
        if _unit_kind(module):
            found[path] = module
    return found


def _inputs(model: torch.nn.Module, units: dict[str, torch.nn.Module], example: torch.Tensor
            ) -> dict[str, list[torch.Tensor]]:
    """The input each unit receives on `example` (a list: a unit called more than once per forward)."""
    seen: dict[str, list[torch.Tensor]] = {p: [] for p in units}
    hooks = [m.register_forward_pre_hook(lambda _m, args, p=p: seen[p].append(args[0].detach().clone()))
             for p, m in units.items()]
    try:
        with torch.no_grad():  # not inference_mode: its tensors could not be traced by an exporter later
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def distinct_layers(spec: ModelSpec, model: torch.nn.Module | None = None) -> list[Layer]:
    """The spec's distinct layers, in the order the model first runs them, each with its count."""
    model = model if model is not None else spec.build()
    units = _units(model)
    found: dict[str, list] = {}
    for path, calls in _inputs(model, units, example_input(spec)).items():
        for x in calls:
            sig, cls = signature(units[path], tuple(x.shape))
            entry = found.setdefault(sig, [path, 0, cls, tuple(x.shape)])
            entry[1] += 1
    return [Layer(sig, path, count, cls, shape) for sig, (path, count, cls, shape) in found.items()]


class _Overhead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.conv(x)


@lru_cache(maxsize=1)
def _split(spec: ModelSpec) -> tuple[torch.nn.Module, dict[str, torch.nn.Module], dict[str, list[torch.Tensor]]]:
    """The spec's model, its unit modules and the inputs each gets, built once per process: a worker kept for
    all the layers of a model (harness layers) builds the model once, not once per layer."""
    model = spec.build()
    units = _units(model)
    return model, units, _inputs(model, units, example_input(spec))


def layer_model(spec: ModelSpec, path: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """(module, the input it gets in the model on the spec's example) for one layer, or any other module of the
    model by its path (a predictor's kernel: a whole block); `overhead`: the empty-model probe. The input is the
    real activation, so parity is checked on realistic values. The module is a copy: an exporter or runtime may
    change the one it is given."""
    if path == OVERHEAD:
        torch.manual_seed(0)
        return _Overhead().eval(), torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model, units, inputs = _split(spec)
    if path in units:
        return copy.deepcopy(units[path]).eval(), inputs[path][0].clone()
    if COMPOSED in path:
        return _composed(spec, model, path.split(COMPOSED))
    module = dict(model.named_modules()).get(path) if path else None
    if module is None:
        raise ValueError(f"{spec.model} has no layer {path!r}")
    return copy.deepcopy(module).eval(), _inputs(model, {path: module}, example_input(spec))[path][0].clone()


def _composed(spec: ModelSpec, model: torch.nn.Module, paths: list[str]) -> tuple[torch.nn.Module, torch.Tensor]:
    """Modules that run one after the other in the model, as one module: each must read exactly what the one
    before it writes there (no residual or other input between them), or the composition is not the model's."""
    named = dict(model.named_modules())
    missing = [p for p in paths if not p or p not in named]
    if missing:
        raise ValueError(f"{spec.model} has no layer {missing[0]!r}")
    modules = [named[p] for p in paths]
    inputs = _inputs(model, dict(zip(paths, modules)), example_input(spec))
    x = inputs[paths[0]][0]
    with torch.no_grad():
        for before, after, module in zip(paths, paths[1:], modules):
            x = module(x)
            read = inputs[after][0]
            if x.shape != read.shape or not torch.allclose(x, read, rtol=1e-4, atol=1e-5):
                raise ValueError(f"{spec.model}: {after} does not read what {before} writes, so they do not run "
                                 "as one composition")
    return torch.nn.Sequential(*[copy.deepcopy(m) for m in modules]).eval(), inputs[paths[0]][0].clone()


def layer_calibration(spec: ModelSpec, path: str, batches: list) -> list:
    """The inputs a layer receives when the whole model runs on calibration batches (numpy), as numpy: what
    an int8 layer alone is calibrated on, so its ranges are the ones it has inside the model. The overhead
    probe, no layer of any model, is calibrated on its own input."""
    import numpy as np

    if path == OVERHEAD:
        return [layer_model(spec, path)[1].numpy()]
    model = spec.build()
    path = path.split(COMPOSED)[0]  # a composition reads what its first module reads
    if path not in dict(model.named_modules()):
        raise ValueError(f"{spec.model} has no layer {path!r}")
    found = []
    for batch in batches:
        found.append(_inputs(model, {path: dict(model.named_modules())[path]}, torch.from_numpy(batch))[path][0])
    return [np.ascontiguousarray(x.numpy()) for x in found]
