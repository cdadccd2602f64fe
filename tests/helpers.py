"""Shared test utilities: seeded inputs and a scale-relative output comparison."""
from __future__ import annotations

import torch

# reparameterize() must match the training form to 1e-4 of the output's scale (float32).
REL_TOL = 1e-4


def image(resolution: int = 256, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference divided by the max abs value of the reference `a`."""
    return ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()
