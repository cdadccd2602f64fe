"""Kernels to time for a fit: each a FastViT building block at a sampled width and input size, placed in a small
configuration that contains it (its path there), so it is exported and timed alone exactly as `harness layers`
times a layer.

Shapes are drawn the way the design space makes them (harness.predict.space): a stage, a first-stage width, an
input size; the kernel then has that stage's width and spatial size. The configurations judged are drawn
elsewhere and never timed for a fit.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import fastvit

from ..spec import ModelSpec
from . import space

STAGE_KINDS = ("patch_embed", "rep_cpe", "repmixer_block", "attention_block")
FIRST_WIDTH_RANGE = (24, 96)  # a first-stage width, in steps of 4 (the paper's 48, 64, 76 inside)
RESOLUTION_RANGE = (64, 448)  # in steps of 32


@dataclass(frozen=True)
class Probe:
    """One kernel to time: `path` in the model `spec`."""
    kind: str
    spec: ModelSpec
    path: str


def probe(kind: str, width: int, size: int, mlp_ratio: float = 3) -> Probe:
    """A kernel of `kind` whose input has `width` channels and `size` x `size` pixels (the stem: its output
    width, and the image size). Its configuration has one block per stage, every stage `width` wide (a
    patch embedding doubles it), the kernel in the earliest stage whose input size makes a valid resolution."""
    if kind == "stem":
        return Probe(kind, ModelSpec(_config([width] * 4, mlp_ratio, "mmmm"), size), "stem")
    if kind in ("final_conv", "classifier"):  # after the last stage, at its size
        channels = width if kind == "final_conv" else width // 2  # the classifier reads the final conv's 2x width
        return Probe(kind, ModelSpec(_config([channels] * 4, mlp_ratio, "mmmm"), size * 32),
                     "final_conv" if kind == "final_conv" else "head")
    if kind not in STAGE_KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}")
    first = 1 if kind == "patch_embed" else 0  # stage 0 has no downsampling
    # a patch embedding reads the stage before it: its input size is that stage's
    stage = next(i for i in range(first, 4) if (size * 2 ** (i - (kind == "patch_embed"))) % 8 == 0 or i == 3)
    scale = 2 ** (stage + 2 - (kind == "patch_embed"))
    widths = [width] * 4
    if kind == "patch_embed":
        widths = [width] * stage + [2 * width] * (4 - stage)
    mixers = "".join("a" if kind in ("rep_cpe", "attention_block") and i == stage else "m" for i in range(4))
    path = {"patch_embed": f"stages.{stage}.downsample", "rep_cpe": f"stages.{stage}.pos_emb"}.get(
        kind, f"stages.{stage}.blocks.0")
    return Probe(kind, ModelSpec(_config(widths, mlp_ratio, mixers), size * scale), path)


def _config(widths: list[int], mlp_ratio: float, mixers: str) -> str:
    return fastvit.configuration((1, 1, 1, 1), widths, mlp_ratio, mixers).config


KINDS = ("stem", *STAGE_KINDS, "final_conv", "classifier")


def sample_probes(count: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[Probe]:
    """`count` distinct kernels, as many of each kind (in turn), drawn as the design space draws them (see the
    module)."""
    rng = random.Random(seed)
    found: dict[tuple, Probe] = {}
    tries = 0
    while len(found) < count and tries < 100 * count:
        tries += 1
        kind = kinds[len(found) % len(kinds)]
        first = 4 * rng.randint(FIRST_WIDTH_RANGE[0] // 4, FIRST_WIDTH_RANGE[1] // 4)
        resolution = 32 * rng.randint(RESOLUTION_RANGE[0] // 32, RESOLUTION_RANGE[1] // 32)
        # the design space puts attention in its last two stages only (space.MIXERS)
        stage = rng.randint({"patch_embed": 1, "rep_cpe": 2, "attention_block": 2}.get(kind, 0), 3)
        ratio = rng.choice(space.MLP_RATIOS)
        if kind == "stem":
            width, size = first, resolution
        elif kind in ("final_conv", "classifier"):
            width, size = first * 8 * (2 if kind == "classifier" else 1), resolution // 32
        else:
            reads = stage - 1 if kind == "patch_embed" else stage
            width, size = first * 2 ** reads, resolution // 2 ** (reads + 2)
        if kind in ("rep_cpe", "attention_block"):
            width = max(32, width // 32 * 32)  # a multiple of the head size
        try:
            found.setdefault((kind, width, size, ratio), probe(kind, width, size, ratio))
        except ValueError:
            continue
    return list(found.values())
