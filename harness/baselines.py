"""Models the paper (and the review) compare FastViT against, built from timm with random weights.

timm is optional: without it a baseline fails with one sentence saying how to install it. Any
timm model can be named as `timm:<name>`; the aliases below are the ones the claims use.
"""
from __future__ import annotations

from dataclasses import dataclass

import fastvit


@dataclass(frozen=True)
class Baseline:
    timm_name: str
    top1: float  # ImageNet-1k top-1 (%) as reported by the model's own paper
    source: str


BASELINES = {
    "mobileone_s4": Baseline("mobileone_s4", 79.4, "MobileOne paper, Table 9"),
    "convnext_base": Baseline("convnext_base", 83.8, "ConvNeXt paper, ImageNet-1k trained, 224px"),
    "caformer_s18": Baseline("caformer_s18", 83.6, "MetaFormer baselines paper"),
    "efficientnet_b0": Baseline("efficientnet_b0", 77.1, "EfficientNet paper"),
    "resnet50": Baseline("resnet50", 76.1, "torchvision ResNet-50 v1 weights"),
    # DeepMind's NFNet-F1 (timm's dm_ port), the model the paper cites; trained at 224, tested at 320
    "nfnet_f1": Baseline("dm_nfnet_f1", 84.7, "NFNet paper (Brock et al. 2021), Table 3, 320px"),
}
PREFIX = "timm:"
# The paper compares against each baseline at its own (ImageNet) resolution, FastViT at 256.
RESOLUTION = 224

# How baseline weights are made; part of every baseline artifact's cache key. timm's own init
# keeps zero-initialised residual gammas (ResNet-50's last BN per block): a converter or XNNPACK
# then skips dead branches, and ResNet-50 "ran" in 2.2 ms on LiteRT here. Randomizing everything
# instead (fastvit.randomize_) makes MobileOne-S4 so ill-conditioned that torch disagrees with
# itself by 18% between 1 and 2 threads. So: timm's random weights, and random values for every
# tensor its init left constant (BN statistics and affines, zero gammas, biases).
INIT = "timm-init+randomized-constants/v1"


def canonical(name: str) -> str | None:
    """'timm:<name>' for a baseline alias or a timm: name, None when `name` is not a baseline."""
    key = str(name).strip()
    if key.startswith(PREFIX) and len(key) > len(PREFIX):
        return key
    if key.lower() in BASELINES:
        return PREFIX + BASELINES[key.lower()].timm_name
    return None


def short_name(model: str) -> str:
    """What --model takes for a canonical model name: a baseline's alias where it has one ('timm:dm_nfnet_f1' ->
    'nfnet_f1'), else the name as it is."""
    if not model.startswith(PREFIX):
        return model
    alias = next((key for key, b in BASELINES.items() if b.timm_name == timm_name(model)), None)
    return alias or model


def timm_name(model: str) -> str:
    return model[len(PREFIX):]


def own_resolution(fastvit_resolution: int = 256):
    """model -> the resolution it is compared at: baselines at RESOLUTION, FastViT at `fastvit_resolution`."""
    return lambda model: RESOLUTION if model.startswith(PREFIX) else fastvit_resolution


def paper_top1(model: str) -> float | None:
    if model.startswith(PREFIX):
        found = [b for b in BASELINES.values() if b.timm_name == timm_name(model)]
        return found[0].top1 if found else None
    row = fastvit.PAPER_TABLE.get(model)
    return row.top1 if row else None


def validate(model: str) -> None:
    """ValueError unless timm is installed and knows the model (checked before a sweep starts)."""
    try:
        import timm
    except ImportError as exc:
        raise ValueError(f"{model} needs timm (pip install timm torchvision)") from exc
    if timm_name(model) not in timm.list_models():
        raise ValueError(f"timm has no model named {timm_name(model)!r}")


def architecture(model: str):
    """The timm model's layers, default-initialised (see build() for the weights runs use)."""
    validate(model)
    import timm

    return timm.create_model(timm_name(model), pretrained=False)


def build(model: str, form: str, seed: int):
    """A timm model with seeded weights, fused when form is 'reparam' (see INIT)."""
    import torch

    validate(model)
    import timm
    from timm.utils.model import reparameterize_model

    torch.manual_seed(seed)
    net = fastvit.randomize_(timm.create_model(timm_name(model), pretrained=False), seed, only_constant=True).eval()
    return reparameterize_model(net) if form == "reparam" else net
