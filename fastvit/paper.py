"""What the paper and Apple's model zoo report per variant, kept as data to compare against.

Params and GMACs: the paper's Table 3 (256 x 256 input). Top-1 (ImageNet-1k, no distillation)
and iPhone 12 Pro latency (Core ML, ModelBench): the model-zoo table of apple/ml-fastvit.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRow:
    params_m: float
    gmacs: float
    top1: float
    iphone12pro_ms: float


PAPER_TABLE: dict[str, PaperRow] = {
    "t8": PaperRow(3.6, 0.7, 76.2, 0.8),
    "t12": PaperRow(6.8, 1.4, 79.3, 1.2),
    "s12": PaperRow(8.8, 1.8, 79.9, 1.4),
    "sa12": PaperRow(10.9, 1.9, 80.9, 1.6),
    "sa24": PaperRow(20.6, 3.8, 82.7, 2.6),
    "sa36": PaperRow(30.4, 5.6, 83.6, 3.5),
    "ma36": PaperRow(42.7, 7.9, 83.9, 4.6),
}
