"""FastViT (Vasu et al., ICCV 2023) in pure PyTorch: training form, exact reparameterization, checkpoints.

Public API
----------
create_model(name, *, num_classes=1000, inference_mode=False)
    Build a variant: t8, t12, s12, sa12, sa24, sa36, ma36 (or `fastvit_t8` ...). Training form by
    default; `inference_mode=True` builds the fused single-conv form (for fused checkpoints).
reparameterize(model)
    Return a fused copy of `model` (the input is untouched); equal outputs in eval mode. A no-op
    copy for a model that is already fused.
load_checkpoint(model, path_or_state_dict)
    Load timm `fastvit_*` or Apple `ml-fastvit` weights (unfused or `*_reparam`), from `.pth`,
    `.pth.tar`, `.safetensors` or a dict. Raises CheckpointError with a readable reason.
list_models()
    The seven variant names. A configuration of the same design space is named by its depths, widths,
    mlp ratio and mixers per stage (`d2.2.6.2-w64.128.256.512-r3-mmaa`); `get_variant` and `create_model`
    take it too.
count(name, resolution=256)
    Parameters and multiply-accumulates (torch's FlopCounterMode) as a `Counts` record.
randomize_(model, seed=0)
    Seeded weights of realistic scale in every branch, for tests and timing without a checkpoint.

The package depends on torch alone (safetensors only to read `.safetensors` files); naming variants and
configurations (fastvit.variants, the paper's table) does not load it.
"""
import importlib

from .paper import PAPER_TABLE, PaperRow
from .variants import VARIANTS, Variant, configuration, get_variant, is_config_name, list_models, parse_config

# What needs torch is imported when first used (PEP 562), so naming a model (the CLI, planning, storing) never loads
# torch: name -> its module
_TORCH_PARTS = {
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "Counts": "counting", "count": "counting", "count_macs": "counting", "count_params": "counting",
    "FastViT": "model", "create_model": "model", "is_reparameterized": "model", "reparameterize": "model",
    "randomize_": "randomize",
}

__all__ = [
    "CheckpointError", "Counts", "FastViT", "PAPER_TABLE", "PaperRow", "VARIANTS", "Variant",
    "configuration", "count", "count_macs", "count_params", "create_model", "get_variant", "is_config_name", "is_reparameterized",
    "list_models", "load_checkpoint", "parse_config", "randomize_", "reparameterize",
]


def __getattr__(name: str):
    if name in _TORCH_PARTS:
        return getattr(importlib.import_module(f".{_TORCH_PARTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
