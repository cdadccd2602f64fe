"""Roofline inputs: FLOPs of a model per op class (torch's FlopCounterMode, per module), and the GEMM
a runtime's peak throughput is measured with, so achieved GFLOP/s and % of peak are SQL queries.

FLOPs count a multiply-add as 2 (FlopCounterMode's convention); element-wise ops count 0, so the
'elementwise', 'activation', 'norm' classes have no FLOPs and no roofline point.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from backends.torch_session import module_kind
from fastvit.counting import EXTRA_FORMULAS

from ..opclass import op_class

GEMM_SIZE = 1024  # (N x N) @ (N x N): large enough to run at a runtime's peak on a CPU core or two


def class_flops(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """FLOPs of one forward pass of `model` on `example`, per op class of harness.opclass."""
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
        model.eval()(example)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    totals: dict[str, int] = {}
    for name, module in model.named_modules():
        flops = per_module.get(f"{root}.{name}" if name else root, 0)
        if not flops:
            continue
        # the same labels as the torch backend's profile, so FLOPs and times meet per op class
        cls = op_class(**module_kind(module))
        if cls == "attention_matmul":  # the attention products: the module's FLOPs minus its Linear children's
            flops -= sum(per_module.get(f"{root}.{name}.{n}", 0) for n, c in module.named_children()
                         if isinstance(c, nn.Linear))
        elif not (cls == "linear" or cls.startswith("conv_")) or any(True for _ in module.children()):
            continue  # FLOPs are counted at the leaves that compute them
        if flops > 0:
            totals[cls] = totals.get(cls, 0) + flops
    return totals


class Gemm(nn.Module):
    """x @ W for a square W: the workload a runtime's peak is measured with."""

    def __init__(self, size: int = GEMM_SIZE):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(size, size) / size ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def gemm_flops(size: int = GEMM_SIZE) -> int:
    return 2 * size ** 3
