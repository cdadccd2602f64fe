"""Baselines: their names, their fused form, and the resolution the paper compares them at."""
from __future__ import annotations

import pytest
import torch
from helpers import rel_diff

from harness import baselines
from harness.spec import ModelSpec, canonical_model, model_sort_key


def test_baseline_names():
    assert canonical_model("mobileone_s4") == "timm:mobileone_s4"
    assert canonical_model("timm:resnet18") == "timm:resnet18"
    assert canonical_model("FastViT_SA12") == "sa12"
    with pytest.raises(ValueError, match="a baseline \\(mobileone_s4, convnext_base, caformer_s18"):
        canonical_model("vit_tiny")


def test_mobileone_baseline_fuses_and_keeps_its_outputs():
    train = ModelSpec("mobileone_s4", 64, form="train").build()
    fused = ModelSpec("mobileone_s4", 64, form="reparam").build()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert rel_diff(train(x), fused(x)) < 1e-4
    assert sum(p.numel() for p in fused.parameters()) < sum(p.numel() for p in train.parameters())


def test_each_model_at_its_own_resolution():
    resolution_of = baselines.own_resolution(384)
    assert resolution_of("sa12") == 384 and resolution_of("timm:convnext_base") == baselines.RESOLUTION == 224


def test_models_sort_in_paper_order_then_baselines():
    names = ["timm:resnet50", "ma36", "t8", "timm:convnext_base", "sa12"]
    assert sorted(names, key=model_sort_key) == ["t8", "sa12", "ma36", "timm:convnext_base", "timm:resnet50"]
