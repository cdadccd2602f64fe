"""Arithmetic of structural reparameterization: folding BatchNorm and branches into one kernel.

Every fused kernel is computed in float64 and cast back to the parameter dtype, so the fused
model differs from the multi-branch one by float32 rounding of the final weights only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Kernel = tuple[torch.Tensor, torch.Tensor]  # (weight, bias) of an equivalent convolution


def fold_batchnorm(weight: torch.Tensor, bn: nn.BatchNorm2d) -> Kernel:
    """Fold an eval-mode BatchNorm that follows a bias-free conv with `weight` into (weight, bias)."""
    std = (bn.running_var.double() + bn.eps).sqrt()
    scale = bn.weight.double() / std
    kernel = weight.double() * scale.reshape(-1, 1, 1, 1)
    bias = bn.bias.double() - bn.running_mean.double() * scale
    return kernel, bias


def identity_kernel(channels: int, groups: int, kernel_size: int, like: torch.Tensor) -> torch.Tensor:
    """The kernel of a grouped conv (channels -> channels) that returns its input unchanged."""
    in_per_group = channels // groups
    kernel = torch.zeros(channels, in_per_group, kernel_size, kernel_size, dtype=torch.float64, device=like.device)
    centre = kernel_size // 2
    out_channel = torch.arange(channels, device=like.device)
    kernel[out_channel, out_channel % in_per_group, centre, centre] = 1.0
    return kernel


def pad_to(kernel: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Zero-pad a smaller centred kernel (1x1, 3x3) to kernel_size x kernel_size."""
    pad = (kernel_size - kernel.shape[-1]) // 2
    return F.pad(kernel, [pad] * 4)


def make_conv(
    in_chs: int,
    out_chs: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """A 'same'-padded convolution, the only shape of conv FastViT uses."""
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=bias)


def conv_from_kernel(kernel: Kernel, like: nn.Conv2d | nn.Parameter | torch.Tensor, *, stride: int, groups: int) -> nn.Conv2d:
    """Build the single inference conv holding a fused (weight, bias), in the dtype/device of `like`."""
    weight, bias = kernel
    ref = like.weight if isinstance(like, nn.Conv2d) else like
    out_chs, in_per_group, kernel_size, _ = weight.shape
    conv = make_conv(in_per_group * groups, out_chs, kernel_size, stride=stride, groups=groups, bias=True)
    conv.to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.to(ref.dtype))
        conv.bias.copy_(bias.to(ref.dtype))
    return conv
