"""FLOPs per op class: they add up to the model's MACs, attention is split from its projections."""
from __future__ import annotations

import pytest
import torch

import fastvit
from harness.measure.flops import class_flops
from harness.spec import ModelSpec


@pytest.mark.parametrize("model", ["sa12", "timm:caformer_s18", "t8"])
def test_class_flops_add_up_to_the_models_macs(model):
    net = ModelSpec(model, 64).build()
    flops = class_flops(net, torch.zeros(1, 3, 64, 64))
    assert sum(flops.values()) == 2 * fastvit.count_macs(net, 64)
    assert flops["conv_pointwise"] > 0
    if model != "t8":
        assert 0 < flops["attention_matmul"] < flops["linear"]
    if not model.startswith("timm:"):
        assert flops["conv_dw_7x7"] > 0 and flops["conv_dw_3x3"] > 0
