"""A FastViT(-like) model as the kernels a latency predictor adds up: its building blocks, each with the
features its cost depends on.

A kernel is a block a runtime runs as a fused group of ops, timed alone in the harness the way `harness
layers` times a layer (the block's own input, exported alone): the stem, each stage's downsampling and
positional encoding, one RepMixer or attention block, the final conv and the classifier. Inside a block the
runtime fuses what it fuses, so a block's time already holds its fusions; what is left between blocks is the
per-call overhead each block timed alone pays once more (the empty-model probe) and whatever fusion crosses a
block boundary (found by timing compositions, harness.predict.fusion).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

import fastvit
from fastvit import FastViT
from fastvit.counting import EXTRA_FORMULAS

from ..spec import ModelSpec, example_input

KINDS = ("stem", "patch_embed", "rep_cpe", "repmixer_block", "attention_block", "final_conv", "classifier")


@dataclass(frozen=True)
class Kernel:
    kind: str
    path: str  # the first module of the model that is this kernel
    count: int  # how many times the model runs it
    shape: tuple[int, ...]  # its input
    channels_in: int
    channels_out: int
    hidden: int  # the ConvFFN's width in a block; 0 elsewhere
    flops: int  # one call, FlopCounterMode's count (a multiply-add is 2)
    params: int = 0  # weights read per call
    output_elements: int = 0
    attention_scores: int = 0  # elements of an attention block's score matrices: heads x tokens^2; 0 elsewhere

    @property
    def size(self) -> int:
        """The input's height (and width: square inputs)."""
        return self.shape[-1]

    @property
    def input_elements(self) -> int:
        count = 1
        for n in self.shape:
            count *= n
        return count

    @property
    def signature(self) -> str:
        hidden = f" h{self.hidden}" if self.hidden else ""
        return f"{self.kind} {self.channels_in}->{self.channels_out}{hidden} @{'x'.join(map(str, self.shape))}"


def _blocks(model: FastViT) -> dict[str, tuple[str, torch.nn.Module]]:
    """path -> (kind, module): every kernel module of a FastViT, in the order the model runs them."""
    found = {"stem": ("stem", model.stem)}
    for i, stage in enumerate(model.stages):
        if not isinstance(stage.downsample, torch.nn.Identity):
            found[f"stages.{i}.downsample"] = ("patch_embed", stage.downsample)
        if not isinstance(stage.pos_emb, torch.nn.Identity):
            found[f"stages.{i}.pos_emb"] = ("rep_cpe", stage.pos_emb)
        for j, block in enumerate(stage.blocks):
            kind = "attention_block" if type(block).__name__ == "AttentionBlock" else "repmixer_block"
            found[f"stages.{i}.blocks.{j}"] = (kind, block)
    found["final_conv"] = ("final_conv", model.final_conv)
    found["head"] = ("classifier", model.head)
    return found


def model_kernels(spec: ModelSpec, model: torch.nn.Module | None = None) -> list[Kernel]:
    """The spec's distinct kernels, in the order the model first runs them, each with its count. FastViT
    variants and configurations only: a baseline's blocks are not in the design space the predictor learns."""
    if spec.is_baseline:
        raise ValueError(f"{spec.model}: kernels are FastViT's building blocks; a baseline has none of them")
    if model is None:  # shapes, FLOPs and weights need no values: built and run on the meta device, in no time
        with torch.device("meta"):
            model = fastvit.create_model(spec.model, inference_mode=spec.form == "reparam").eval()
        example = torch.empty(spec.batch, 3, spec.resolution, spec.resolution, device="meta")
    else:
        example = example_input(spec)
    blocks = _blocks(model)
    shapes: dict[str, tuple[int, ...]] = {}
    outputs: dict[str, int] = {}

    def seen(path: str):
        def hook(_module, args, output):
            shapes.setdefault(path, tuple(args[0].shape))
            outputs.setdefault(path, output.numel())
        return hook

    hooks = [module.register_forward_hook(seen(path)) for path, (_, module) in blocks.items()]
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    flops = {name.split(".", 1)[1] if "." in name else "": sum(ops.values())
             for name, ops in counter.get_flop_counts().items()}
    found: dict[str, Kernel] = {}
    for path, (kind, module) in blocks.items():
        channels_in = shapes[path][1]
        kernel = Kernel(kind, path, 1, shapes[path], channels_in, _channels_out(kind, module, channels_in),
                        _hidden(module), flops.get(path, 0), sum(p.numel() for p in module.parameters()),
                        outputs[path], _attention_scores(module, shapes[path]))
        if kernel.signature in found:
            first = found[kernel.signature]
            found[kernel.signature] = Kernel(**{**first.__dict__, "count": first.count + 1})
        else:
            found[kernel.signature] = kernel
    return list(found.values())


def _channels_out(kind: str, module: torch.nn.Module, channels_in: int) -> int:
    if kind == "classifier":
        return module.fc.out_features if isinstance(module.fc, torch.nn.Linear) else channels_in
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[-1].out_channels if kind in ("stem", "patch_embed", "final_conv") else channels_in


def _attention_scores(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """heads x tokens^2 of an attention block's softmax(QK^T) (one image), which its FLOPs alone do not carry: on
    ExecuTorch a block at 24x24 tokens costs several times what one at 12x12 with the same FLOPs share does."""
    mixer = getattr(module, "token_mixer", None)
    heads = getattr(mixer, "num_heads", 0)
    tokens = shape[-1] * shape[-2] if len(shape) == 4 else 0
    return shape[0] * heads * tokens * tokens if heads else 0


def _hidden(module: torch.nn.Module) -> int:
    mlp = getattr(module, "mlp", None)
    return mlp.fc1.out_channels if mlp is not None else 0
