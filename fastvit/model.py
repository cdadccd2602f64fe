"""The FastViT network and `create_model` / `reparameterize` (the variants it builds: fastvit.variants)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .layers import AttentionBlock, MobileOneBlock, PatchEmbed, Reparameterizable, RepCPE, RepMixerBlock
from .variants import Variant, get_variant


class Stage(nn.Module):
    """Optional downsampling, optional conditional positional encoding, then the blocks."""

    def __init__(self, in_chs: int, out_chs: int, depth: int, mlp_ratio: float, attention: bool,
                 downsample: bool, drop_paths: list[float], layer_scale_init: float, inference_mode: bool):
        super().__init__()
        self.downsample = PatchEmbed(in_chs, out_chs, inference_mode=inference_mode) if downsample else nn.Identity()
        self.pos_emb = RepCPE(out_chs, inference_mode=inference_mode) if attention else nn.Identity()
        if attention:
            blocks = [AttentionBlock(out_chs, mlp_ratio, dp, layer_scale_init) for dp in drop_paths]
        else:
            blocks = [RepMixerBlock(out_chs, mlp_ratio, dp, layer_scale_init, inference_mode=inference_mode)
                      for dp in drop_paths]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pos_emb(self.downsample(x)))


class ClassifierHead(nn.Module):
    """Global average pool, dropout, linear classifier (key `fc`)."""

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x.mean((2, 3))))


class FastViT(nn.Module):
    """FastViT: MobileOne stem, four stages (/4, /8, /16, /32), SE-gated `conv_exp` head, classifier.

    Accepts any input of at least 32 x 32 pixels; the paper uses 256 and fine-tunes at 384.
    """

    def __init__(self, variant: Variant, num_classes: int = 1000, *, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, layer_scale_init: float = 1e-5, inference_mode: bool = False):
        super().__init__()
        self.variant = variant
        self.num_classes = num_classes
        widths = variant.widths
        self.stem = nn.Sequential(
            MobileOneBlock(3, widths[0], 3, stride=2, inference_mode=inference_mode),
            MobileOneBlock(widths[0], widths[0], 3, stride=2, groups=widths[0], inference_mode=inference_mode),
            MobileOneBlock(widths[0], widths[0], 1, inference_mode=inference_mode),
        )
        # Stochastic depth grows linearly over all blocks of the network.
        total = sum(variant.depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, start = [], 0
        for i, depth in enumerate(variant.depths):
            attention = variant.attention(i)
            stages.append(Stage(
                widths[max(i - 1, 0)], widths[i], depth, variant.mlp_ratio, attention,
                downsample=i > 0, drop_paths=rates[start:start + depth],
                layer_scale_init=layer_scale_init, inference_mode=inference_mode,
            ))
            start += depth
        self.stages = nn.Sequential(*stages)
        self.num_features = 2 * widths[-1]
        self.final_conv = MobileOneBlock(widths[-1], self.num_features, 3, groups=widths[-1], use_se=True,
                                         inference_mode=inference_mode)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def create_model(name: str, *, num_classes: int = 1000, inference_mode: bool = False, **kwargs) -> FastViT:
    """Build a FastViT variant (`t8` ... `ma36`, or `fastvit_t8` ..., or a configuration name, see get_variant)
    with freshly initialised weights.

    inference_mode=True builds the reparameterized (single-conv) form directly, the layout of the
    fused `*_reparam.pth.tar` checkpoints. Extra keyword arguments (drop_rate, drop_path_rate,
    layer_scale_init) go to `FastViT`.
    """
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
    return FastViT(get_variant(name), num_classes, inference_mode=inference_mode, **kwargs)


def reparameterize(model: nn.Module) -> nn.Module:
    """Return an inference-form copy of `model`: every reparameterizable block becomes one conv.

    The input model is left untouched. In eval mode the copy computes what the input computes
    (BatchNorm folded with its running statistics). Calling it on an already reparameterized model
    returns an equal copy.
    """
    fused = copy.deepcopy(model)
    _reparameterize_in_place(fused)
    return fused


def _reparameterize_in_place(module: nn.Module) -> None:
    if isinstance(module, Reparameterizable):
        module.reparameterize()  # a block fuses its own sub-blocks; no need to descend
        return
    for child in module.children():
        _reparameterize_in_place(child)


def is_reparameterized(model: nn.Module) -> bool:
    """True when no block of `model` has multi-branch weights left."""
    return all(m.reparam_conv is not None for m in model.modules() if isinstance(m, Reparameterizable))
