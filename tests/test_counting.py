"""Params and MACs from FlopCounterMode agree with the paper's table to its rounding."""
from __future__ import annotations

import pytest
import torch

import fastvit
from fastvit.layers import Attention


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
