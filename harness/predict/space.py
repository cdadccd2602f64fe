"""FastViT-like architectures sampled from the paper's design space (Table 2, widened): what a latency
predictor is judged on, never fitted on.

The paper's seven variants span depths (2,2,4,2) to (6,6,18,6), first-stage widths 48 to 76 doubling each
stage, mlp ratio 3 or 4, and RepMixer everywhere or attention in the last stage. Sampled configurations vary
each of those independently, and also put attention in the last two stages.
"""
from __future__ import annotations

import random

import fastvit

DEPTHS = ((1, 6), (1, 6), (2, 18), (1, 6))  # per stage, inclusive
FIRST_WIDTHS = (32, 48, 64, 76)
MLP_RATIOS = (3, 4)
MIXERS = ("mmmm", "mmma", "mmaa")
RESOLUTIONS = (128, 192, 256, 320, 384)


def sample_configs(count: int, seed: int = 0) -> list[str]:
    """`count` distinct valid configurations (fastvit.Variant.config names), none of them a paper variant, the
    same ones for the same seed."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    paper = {v.config for v in fastvit.VARIANTS.values()}
    while len(found) < count:
        depths = [rng.randint(low, high) for low, high in DEPTHS]
        first = rng.choice(FIRST_WIDTHS)
        widths = [first * 2**i for i in range(4)]
        try:
            config = fastvit.configuration(depths, widths, rng.choice(MLP_RATIOS), rng.choice(MIXERS)).config
        except ValueError:  # e.g. an attention stage whose width is no multiple of the head size
            continue
        if config not in paper:
            found.setdefault(config)
    return list(found)


def sample_models(count: int, seed: int = 0) -> list[tuple[str, int]]:
    """`count` (configuration, resolution) pairs: each sampled configuration at a sampled input size."""
    rng = random.Random(seed + 1)
    return [(config, rng.choice(RESOLUTIONS)) for config in sample_configs(count, seed)]
