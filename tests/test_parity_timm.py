"""Our FastViT is timm's FastViT, number for number, in both forms, for every variant at 256 and 384.

timm is the reference only: its weights are randomized, its state dict loaded into ours.
"""
from __future__ import annotations

import pytest
import torch

import fastvit
from helpers import REL_TOL, image, rel_diff

timm = pytest.importorskip("timm", reason="timm is a test dependency: pip install -e .[test]")
from timm.utils.model import reparameterize_model  # noqa: E402

# Outputs of the same float32 ops in the same order: equal up to a few ulps of reduction order.
SAME_OPS_TOL = 1e-5


def _timm_pair(name: str, seed: int = 0):
    reference = fastvit.randomize_(timm.create_model(f"fastvit_{name}"), seed).eval()
    ours = fastvit.load_checkpoint(fastvit.create_model(name), reference.state_dict()).eval()
    return reference, ours


@pytest.mark.parametrize("resolution", [256, 384])
@pytest.mark.parametrize("name", fastvit.list_models())
def test_matches_timm_in_both_forms(name, resolution):
    reference, ours = _timm_pair(name)
    x = image(resolution)
    with torch.no_grad():
        expected = reference(x)
        assert rel_diff(expected, ours(x)) <= SAME_OPS_TOL

        fused_reference = reparameterize_model(reference)
        fused_ours = fastvit.reparameterize(ours)
        assert rel_diff(fused_reference(x), fused_ours(x)) <= SAME_OPS_TOL
        assert rel_diff(expected, fused_ours(x)) <= REL_TOL
    assert fastvit.is_reparameterized(fused_ours)


@pytest.mark.parametrize("name", ["t8", "sa12"])
def test_inference_form_loads_timm_fused_state_dict(name):
    reference, _ = _timm_pair(name)
    fused_reference = reparameterize_model(reference)
    ours = fastvit.load_checkpoint(fastvit.create_model(name, inference_mode=True), fused_reference.state_dict())
    x = image()
    with torch.no_grad():
        assert rel_diff(fused_reference(x), ours.eval()(x)) <= SAME_OPS_TOL


@pytest.mark.parametrize("name", fastvit.list_models())
def test_same_parameter_count_as_timm(name):
    assert fastvit.count_params(fastvit.create_model(name)) == sum(
        p.numel() for p in timm.create_model(f"fastvit_{name}").parameters())
