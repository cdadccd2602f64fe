"""Params and MACs from FlopCounterMode agree with the paper's table to its rounding."""
from __future__ import annotations

import pytest
import torch

import fastvit
from fastvit.layers import Attention
from harness.spec import ModelSpec


@pytest.mark.parametrize("name", fastvit.list_models())
def test_gmacs_match_the_paper(name):
    counts = fastvit.count(name)
    assert abs(counts.gmacs - fastvit.PAPER_TABLE[name].gmacs) <= 0.1, counts


def test_t8_is_about_0_7_gmacs_and_grows_with_resolution():
    at_256, at_384 = fastvit.count("t8").gmacs, fastvit.count("t8", 384).gmacs
    assert 0.65 <= at_256 <= 0.75
    assert at_384 == pytest.approx(at_256 * (384 / 256) ** 2, rel=0.02)


def test_attention_products_are_counted():
    """SDPA's CPU kernel is unknown to FlopCounterMode; our formula must add QK^T and AV."""
    dim, tokens = 64, 16
    macs = fastvit.count_macs(torch.nn.Sequential(torch.nn.Conv2d(3, dim, 1, bias=False), Attention(dim)).eval(),
                              resolution=4)
    projections = tokens * 3 * dim * dim + tokens * dim * dim + tokens * 3 * dim
    attention = 2 * tokens * tokens * dim
    assert macs == projections + attention


def test_param_fields():
    counts = fastvit.count("t8")
    assert counts.params_train == fastvit.count_params(fastvit.create_model("t8"))
    assert counts.params_classifier == 768 * 1000 + 1000
    assert counts.params_inference < counts.params_train


@pytest.mark.parametrize("bad", [0, 100, 31, "256", -32])
def test_bad_resolution(bad):
    with pytest.raises(ValueError, match="multiple of 32"):
        fastvit.count("t8", bad)


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match="t8, t12, s12, sa12, sa24, sa36, ma36"):
        fastvit.create_model("t9")
    assert fastvit.create_model("FASTVIT_T8").variant.name == "t8"


def test_a_configuration_names_a_model_of_the_design_space():
    t8 = fastvit.get_variant("t8")
    assert t8.config == "d2.2.4.2-w48.96.192.384-r3-mmmm" and fastvit.get_variant(t8.config) is t8
    assert fastvit.get_variant("D4.4.12.4-W64.128.256.512-R4-MMMA").name == "sa24"  # a paper variant is itself
    wide = fastvit.create_model("d1.1.2.1-w32.64.128.256-r2-mmaa")
    assert wide.variant.name == "d1.1.2.1-w32.64.128.256-r2-mmaa"
    stages = [[type(b).__name__ for b in stage.blocks] for stage in wide.stages]
    assert stages == [["RepMixerBlock"], ["RepMixerBlock"], ["AttentionBlock"] * 2, ["AttentionBlock"]]
    assert [type(s.pos_emb).__name__ for s in wide.stages] == ["Identity", "Identity", "RepCPE", "RepCPE"]
    # its counts come from the same code as the variants'; fused, it computes what it computed
    model = fastvit.randomize_(wide, 0).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(x), fastvit.reparameterize(model)(x), rtol=1e-3, atol=1e-4)
    assert fastvit.count("d1.1.2.1-w32.64.128.256-r2-mmaa", 64).params_inference < fastvit.count("t8", 64).params_inference


@pytest.mark.parametrize("bad, why", [
    ("d2.2.4-w48.96.192.384-r3-mmmm", "four stages"),
    ("d2.2.4.2-w48.100.192.384-r3-mmmm", "a multiple of the one before"),
    ("d2.2.4.2-w48.96.192.400-r3-mmma", "a multiple of 32"),
    ("d2.2.0.2-w48.96.192.384-r3-mmmm", "positive"),
    ("d2.2.4.2-w48.96.192.384-r3-mmmx", "m \\(RepMixer\\) or a"),
    ("d2.x.4.2-w48.96.192.384-r3-mmmm", "whole numbers"),
    ("d2.2.4.2-w48.96.192.384-mmmm", "expected d<depths>"),
])
def test_a_wrong_configuration_says_what_is_wrong(bad, why):
    with pytest.raises(ValueError, match=why):
        fastvit.create_model(bad)
    with pytest.raises(ValueError, match=why):  # and a model spec says the same, not "unknown model"
        ModelSpec(bad)
