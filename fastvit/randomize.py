"""Seeded random weights that exercise every branch, for tests and for timing without a checkpoint.

With the default initialisation BatchNorm is the identity on its running statistics (mean 0,
var 1) and layer scales are 1e-5, so most branches contribute ~0 and a wrong fusion goes unseen.
`randomize_` gives every floating-point tensor a value of realistic scale instead.
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0, *, only_constant: bool = False) -> nn.Module:
    """Fill every parameter and BatchNorm statistic of `model` with seeded values; returns `model`.

    Same seed, same variant and form -> same weights, whatever the machine. only_constant=True
    touches only tensors the initializer left constant (BN statistics and affines, zero-initialised
    gammas and biases) and keeps the random weights it drew: for networks without FastViT's small
    layer scales, where random weights everywhere make activations grow without bound.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low

    for name, tensor in model.state_dict().items():
        if not tensor.dtype.is_floating_point:
            continue
        if only_constant and (tensor.numel() < 2 or not bool((tensor == tensor.flatten()[0]).all())):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "running_var":
            value = uniform(tensor.shape, 0.5, 2.0)
        elif leaf == "running_mean":
            value = uniform(tensor.shape, -0.2, 0.2)
        elif leaf == "gamma":  # layer scale: signed, so a sign error in a fusion shows
            value = uniform(tensor.shape, -0.2, 0.2)
        elif tensor.ndim == 1 and leaf == "weight":  # BatchNorm affine scale
            value = uniform(tensor.shape, 0.5, 1.5)
        elif tensor.ndim == 1:  # biases
            value = uniform(tensor.shape, -0.1, 0.1)
        else:  # conv / linear weights, scaled by fan-in so activations keep their size
            fan_in = tensor[0].numel()
            value = torch.randn(tensor.shape, generator=gen, dtype=torch.float64) * (1.0 / fan_in) ** 0.5
        tensor.copy_(value.to(tensor.dtype))
    return model
