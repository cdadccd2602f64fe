"""Parameter and multiply-accumulate counts, measured with torch's own FlopCounterMode.

Convention (the paper's, checked against its Table 3 in the README): MACs are those of the
inference (reparameterized) form for one image; FlopCounterMode counts a multiply-add as two
FLOPs in convolutions, matmuls and attention, and ignores element-wise ops (BN, GELU, adds),
so MACs = FLOPs / 2. Parameters are counted on a chosen form; see `Counts` for what each field is.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .model import FastViT, create_model, reparameterize


@dataclass(frozen=True)
class Counts:
    name: str
    resolution: int
    params_train: int  # the training (multi-branch) form, everything included: what timm reports
    params_inference: int  # after reparameterization, classifier included
    params_classifier: int  # the final linear layer alone
    macs: int  # inference form, one image

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# FlopCounterMode knows the CUDA attention kernels but not the one SDPA picks on CPU; without
# this entry attention's QK^T and AV products would silently count as zero.
EXTRA_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def count_macs(model: nn.Module, resolution: int = 256, batch: int = 1) -> int:
    """Multiply-accumulates of one forward pass of `model` on a (batch, 3, resolution, resolution) input."""
    x = torch.zeros(batch, 3, resolution, resolution)
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
        model.eval()(x)
    return counter.get_total_flops() // 2


def count(name: str, resolution: int = 256, num_classes: int = 1000) -> Counts:
    """Params and MACs of a variant at a square resolution (a multiple of 32, at least 32)."""
    if not isinstance(resolution, int) or resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, got {resolution!r}")
    model: FastViT = create_model(name, num_classes=num_classes)
    fused = reparameterize(model)
    head = fused.head.fc
    return Counts(
        name=model.variant.name,
        resolution=resolution,
        params_train=count_params(model),
        params_inference=count_params(fused),
        params_classifier=count_params(head) if isinstance(head, nn.Linear) else 0,
        macs=count_macs(fused, resolution),
    )
