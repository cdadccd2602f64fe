"""What is being measured: a model spec (variant, resolution, batch, form, weights) and a target."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

import fastvit

from . import baselines

FORMS = ("train", "reparam")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# The choices of the options that name them (`both`: each form)
Form = Enum("Form", {f: f for f in (*FORMS, "both")}, type=str)
Precision = Enum("Precision", {p: p for p in PRECISIONS}, type=str)
EXAMPLE_SEED = 1234  # the input every export is traced with and every parity check runs on


def canonical_model(name: str) -> str:
    """'t8' / 'fastvit_t8' -> 't8'; 'mobileone_s4' / 'timm:mobileone_s4' -> 'timm:mobileone_s4'."""
    baseline = baselines.canonical(name)
    if baseline:
        return baseline
    try:
        return fastvit.get_variant(name).name
    except ValueError:
        if fastvit.is_config_name(name):
            raise  # what is wrong with the configuration
        raise ValueError(f"unknown model {name!r}; choose a FastViT variant ({', '.join(fastvit.list_models())}), "
                         f"a configuration (d2.2.6.2-w64.128.256.512-r3-mmaa: depths, widths, mlp ratio, mixers "
                         f"m/a per stage), a baseline ({', '.join(baselines.BASELINES)}) or timm:<name>") from None


@dataclass(frozen=True)
class ModelSpec:
    model: str  # fastvit variant ("t8") or configuration, or a timm baseline ("timm:mobileone_s4"; alias "mobileone_s4")
    resolution: int = 256
    batch: int = 1
    form: str = "reparam"  # "train" (multi-branch) or "reparam" (fused)
    weights: str = "random:0"  # "random:<seed>" or a checkpoint path

    def __post_init__(self):
        object.__setattr__(self, "model", canonical_model(self.model))
        if self.form not in FORMS:
            raise ValueError(f"unknown form {self.form!r}; choose one of: {', '.join(FORMS)}")
        if self.resolution < 32 or self.resolution % 32:
            raise ValueError(f"resolution must be a positive multiple of 32, got {self.resolution}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if self.weights.startswith("random:") and not self.weights[len("random:"):].isdigit():
            raise ValueError(f"--weights random:<seed> takes a whole number as the seed, got {self.weights!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    def weights_id(self) -> str:
        """Identity of the weights for cache keys: the seed, or the checkpoint file's sha256."""
        if self.weights.startswith("random:"):
            return self.weights
        return "sha256:" + hashlib.sha256(Path(self.weights).read_bytes()).hexdigest()

    @property
    def is_baseline(self) -> bool:
        return self.model.startswith(baselines.PREFIX)

    def architecture(self):
        """The model's layers without meaningful weights (cheap under `torch.device("meta")`)."""
        return baselines.architecture(self.model) if self.is_baseline else fastvit.create_model(self.model)

    def build(self):
        """The torch module this spec describes, in eval mode."""
        if self.is_baseline:
            if not self.weights.startswith("random:"):
                raise ValueError("baselines run with random weights only (--weights random:<seed>)")
            return baselines.build(self.model, self.form, int(self.weights.split(":", 1)[1]))
        model = fastvit.create_model(self.model)
        if self.weights.startswith("random:"):
            fastvit.randomize_(model, int(self.weights.split(":", 1)[1]))
        else:
            fastvit.load_checkpoint(model, self.weights)
        model.eval()
        return fastvit.reparameterize(model) if self.form == "reparam" else model


@dataclass(frozen=True)
class Target:
    backend: str
    device: str
    options: str = ""  # e.g. "delegate=gpu" for LiteRT on a phone; part of the target's name

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.device}" + (f"[{self.options}]" if self.options else "")

    def option_dict(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.options.split(",") if item)


def example_input(spec: ModelSpec):
    """The spec's example input: what every export is traced with and every parity check runs on."""
    import torch

    return torch.randn(spec.batch, 3, spec.resolution, spec.resolution,
                       generator=torch.Generator().manual_seed(EXAMPLE_SEED))


def device_matches(requested: str, device: str) -> bool:
    """Does a stored run's device fall under a --device value (a family or an exact device)?"""
    return requested == device or device.startswith(f"{requested}:")


def model_sort_key(model: str) -> tuple:
    """FastViT variants in the paper's order (t8 ... ma36), then baselines by name."""
    variants = fastvit.list_models()
    return (variants.index(model) if model in variants else len(variants), model)


def fastvit_source_hash() -> str:
    """A hash of the model code itself: an artifact exported from older code is not reused."""
    digest = hashlib.sha256()
    for path in sorted(Path(fastvit.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
