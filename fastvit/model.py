"""The FastViT network, its seven paper variants, and `create_model` / `reparameterize`."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .layers import AttentionBlock, MobileOneBlock, PatchEmbed, Reparameterizable, RepCPE, RepMixerBlock


MIXERS = {"m": "RepMixer", "a": "attention"}  # a stage's token mixer, one letter per stage in a configuration
HEAD_DIM = 32  # the attention's head size: an attention stage's width is a multiple of it


@dataclass(frozen=True)
class Variant:
    """One row of the paper's architecture table (Table 2), or a configuration of the same design space."""

    name: str
    depths: tuple[int, int, int, int]
    widths: tuple[int, int, int, int]
    mlp_ratio: float
    mixers: str = "mmmm"  # per stage: "m" RepMixer, "a" attention (with RepCPE before it); SA/MA variants: "mmma"

    @property
    def config(self) -> str:
        """The configuration as a name: d<depths>-w<widths>-r<mlp ratio>-<mixers>, e.g. t8 is
        d2.2.4.2-w48.96.192.384-r3-mmmm."""
        return (f"d{'.'.join(map(str, self.depths))}-w{'.'.join(map(str, self.widths))}-r{self.mlp_ratio:g}-"
                f"{self.mixers}")

    def attention(self, stage: int) -> bool:
        return self.mixers[stage] == "a"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("t8", (2, 2, 4, 2), (48, 96, 192, 384), 3),
    Variant("t12", (2, 2, 6, 2), (64, 128, 256, 512), 3),
    Variant("s12", (2, 2, 6, 2), (64, 128, 256, 512), 4),
    Variant("sa12", (2, 2, 6, 2), (64, 128, 256, 512), 4, "mmma"),
    Variant("sa24", (4, 4, 12, 4), (64, 128, 256, 512), 4, "mmma"),
    Variant("sa36", (6, 6, 18, 6), (64, 128, 256, 512), 4, "mmma"),
    Variant("ma36", (6, 6, 18, 6), (76, 152, 304, 608), 4, "mmma"),
)}


def list_models() -> list[str]:
    """Variant names in the paper's order (smallest first)."""
    return list(VARIANTS)


def get_variant(name: str) -> Variant:
    """Look up a variant by `t8` or `fastvit_t8` (any case), or a configuration of the same design space by its
    name (Variant.config, e.g. d2.2.6.2-w64.128.256.512-r3-mmaa); ValueError saying why otherwise. A
    configuration that is a paper variant is that variant."""
    key = str(name).strip().lower().removeprefix("fastvit_")
    if key in VARIANTS:
        return VARIANTS[key]
    if is_config_name(key):
        found = parse_config(key)
        return next((v for v in VARIANTS.values() if v.config == found.config), found)
    raise ValueError(f"unknown FastViT variant {name!r}; choose one of: {', '.join(VARIANTS)}, or a configuration "
                     "d<4 depths>-w<4 widths>-r<mlp ratio>-<4 mixers: m RepMixer, a attention>, e.g. "
                     "d2.2.4.2-w48.96.192.384-r3-mmmm")


def is_config_name(name: str) -> bool:
    """Is `name` spelt as a configuration (d...-w...-r...-...), right or wrong?"""
    key = str(name).strip().lower().removeprefix("fastvit_")
    return key.startswith("d") and "-w" in key


def parse_config(name: str) -> Variant:
    """A configuration name (Variant.config) as a Variant named by its canonical spelling; ValueError saying
    what is wrong."""
    parts = name.strip().lower().split("-")
    if len(parts) != 4 or not (parts[0][:1] == "d" and parts[1][:1] == "w" and parts[2][:1] == "r"):
        raise ValueError(f"FastViT configuration {name!r}: expected d<depths>-w<widths>-r<mlp ratio>-<mixers>, "
                         "e.g. d2.2.4.2-w48.96.192.384-r3-mmmm")
    try:
        depths = tuple(int(d) for d in parts[0][1:].split("."))
        widths = tuple(int(w) for w in parts[1][1:].split("."))
        ratio = float(parts[2][1:])
    except ValueError:
        raise ValueError(f"FastViT configuration {name!r}: depths and widths are whole numbers, the mlp ratio a "
                         "number") from None
    return configuration(depths, widths, ratio, parts[3], name)


def configuration(depths, widths, mlp_ratio: float, mixers: str, name: str | None = None) -> Variant:
    """A configuration of the design space, checked, as a Variant named by its canonical spelling (Variant.config);
    ValueError saying what is wrong (`name`: how the caller spelt it, for the message)."""
    depths, widths = tuple(depths), tuple(widths)
    problems = []
    if len(depths) != 4 or len(widths) != 4 or len(mixers) != 4:
        problems.append("four stages: four depths, four widths, four mixers")
    if any(d < 1 for d in depths) or any(w < 1 for w in widths) or not mlp_ratio > 0:
        problems.append("depths, widths and the mlp ratio are positive")
    if set(mixers) - set(MIXERS):
        problems.append("a mixer is m (RepMixer) or a (attention)")
    if not problems:
        if any(widths[i] % widths[i - 1] for i in range(1, 4)):
            problems.append("each width a multiple of the one before (the downsampling conv is grouped by the "
                            "stage's input width)")
        if any(widths[i] % HEAD_DIM for i in range(4) if mixers[i] == "a"):
            problems.append(f"an attention stage's width a multiple of {HEAD_DIM} (the head size)")
    config = Variant("", depths, widths, mlp_ratio, mixers).config
    if problems:
        raise ValueError(f"FastViT configuration {name or config!r}: " + "; ".join(problems))
    return Variant(config, depths, widths, mlp_ratio, mixers)


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
