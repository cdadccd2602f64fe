"""Each reparameterizable block, fused, computes what its multi-branch form computes in eval mode."""
from __future__ import annotations

import pytest
import torch

import fastvit
from fastvit import layers
from helpers import REL_TOL, rel_diff

BLOCKS = {
    "stem_conv3x3_s2": (lambda: layers.MobileOneBlock(3, 16, 3, stride=2), 3),
    "stem_dw3x3_s2": (lambda: layers.MobileOneBlock(16, 16, 3, stride=2, groups=16), 16),
    "pointwise_with_identity": (lambda: layers.MobileOneBlock(16, 16, 1), 16),
    "dw3x3_with_identity": (lambda: layers.MobileOneBlock(16, 16, 3, groups=16, use_act=False), 16),
    "two_conv_branches": (lambda: layers.MobileOneBlock(16, 16, 3, num_conv_branches=2), 16),
    "conv_exp_se_grouped": (lambda: layers.MobileOneBlock(32, 64, 3, groups=32, use_se=True), 32),
    "large_kernel_7x7": (lambda: layers.LargeKernelConv(16, 32, 7, stride=2, groups=16), 16),
    "repmixer": (lambda: layers.RepMixer(16), 16),
    "rep_cpe": (lambda: layers.RepCPE(16), 16),
    "patch_embed": (lambda: layers.PatchEmbed(16, 32), 16),
    "repmixer_block": (lambda: layers.RepMixerBlock(16, 3.0), 16),
}


def _fused_error(make, channels: int, seed: int = 0) -> float:
    block = fastvit.randomize_(make(), seed).eval()
    x = torch.randn(2, channels, 20, 20, generator=torch.Generator().manual_seed(seed))
    fused = fastvit.reparameterize(block).eval()
    with torch.no_grad():
        return rel_diff(block(x), fused(x))


@pytest.mark.parametrize("name", BLOCKS)
def test_fused_block_equals_training_block(name):
    make, channels = BLOCKS[name]
    assert _fused_error(make, channels) <= REL_TOL


@pytest.mark.parametrize("name", BLOCKS)
def test_fused_block_is_a_single_conv(name):
    make, _ = BLOCKS[name]
    fused = fastvit.reparameterize(make())
    assert fastvit.is_reparameterized(fused)
    for module in fused.modules():
        if hasattr(module, "reparameterize"):
            children = {n for n, m in module.named_children() if m is not None}
            assert children <= {"reparam_conv", "se", "act"}, children


def test_reparameterize_leaves_input_untouched():
    block = fastvit.randomize_(layers.RepMixer(8))
    before = {k: v.clone() for k, v in block.state_dict().items()}
    fastvit.reparameterize(block)
    after = block.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert block.reparam_conv is None and block.mixer is not None


def test_reparameterize_twice_is_a_noop():
    block = fastvit.randomize_(layers.RepMixerBlock(8, 3.0)).eval()
    once = fastvit.reparameterize(block)
    twice = fastvit.reparameterize(once)
    x = torch.randn(1, 8, 10, 10)
    assert once.state_dict().keys() == twice.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(once(x), twice(x))


# The tests above must be able to fail. Sabotage one piece of fusion arithmetic at a time and
# check that the same comparison catches it on randomized weights.
SABOTAGE = {
    # scale branch padded off-centre
    "pad_to": lambda k, size: torch.nn.functional.pad(k, [0, size - k.shape[-1], 0, size - k.shape[-1]]),
    # BatchNorm folded without its running mean
    "fold_batchnorm": lambda w, bn: (
        w.double() * (bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()).reshape(-1, 1, 1, 1),
        bn.bias.double(),
    ),
    # identity branch dropped
    "identity_kernel": lambda channels, groups, k, like: torch.zeros(
        channels, channels // groups, k, k, dtype=torch.float64, device=like.device),
}


@pytest.mark.parametrize("piece", SABOTAGE)
def test_wrong_fusion_is_caught(monkeypatch, piece):
    monkeypatch.setattr(layers, piece, SABOTAGE[piece])
    worst = max(_fused_error(make, channels) for make, channels in BLOCKS.values())
    assert worst > 100 * REL_TOL


def test_default_init_would_hide_a_wrong_fusion(monkeypatch):
    """Why the tests randomize: fresh BatchNorms have running mean 0, so dropping it changes nothing."""
    monkeypatch.setattr(layers, "fold_batchnorm", SABOTAGE["fold_batchnorm"])
    block = layers.MobileOneBlock(16, 16, 3, groups=16).eval()
    x = torch.randn(2, 16, 12, 12)
    with torch.no_grad():
        assert rel_diff(block(x), fastvit.reparameterize(block)(x)) <= REL_TOL
    assert _fused_error(lambda: layers.MobileOneBlock(16, 16, 3, groups=16), 16) > 100 * REL_TOL
