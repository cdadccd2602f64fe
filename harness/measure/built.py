"""A FastViT spec's built model, kept in the cache as its weights.

Building FastViT with meaningful random weights (randomized BatchNorm statistics and layer scales) and folding
it to its inference form takes 0.3-2 s per model on the one thread a worker gives torch, and a sweep builds the
same model once per target. The first build keeps the weights; later ones make the module on the meta device (no
initialisation) and take those weights as they are: the same tensors, so the same outputs and the same exports.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

import fastvit
from harness.measure.cache import cache_key, write_whole
from harness.spec import ModelSpec, fastvit_source_hash

FOLDER = "built-models"


def built_model(spec: ModelSpec, cache_dir: Path) -> torch.nn.Module:
    """`spec.build()`, from the cache when an earlier job kept it (baselines are always built: timm's, not ours)."""
    if spec.is_baseline:
        return spec.build()
    path = Path(cache_dir) / FOLDER / f"{_key(spec)}.pt"
    if path.exists():
        try:
            return _restored(spec, path)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
            pass  # a truncated or stale entry: built again below, and replaced
    model = spec.build()
    write_whole(path, lambda temporary: torch.save(model.state_dict(), temporary))
    return model


def _key(spec: ModelSpec) -> str:
    return cache_key({"spec": spec.as_dict(), "weights": spec.weights_id(), "fastvit": fastvit_source_hash(),
                      "torch": torch.__version__})


def _restored(spec: ModelSpec, path: Path) -> torch.nn.Module:
    # the module tree exactly as spec.build() makes it (a fused model's modules in the order reparameterize leaves
    # them, not the order a model built fused has): its state dict, and so an export, come out byte for byte the same
    with torch.device("meta"):
        model = fastvit.create_model(spec.model).eval()
        if spec.form == "reparam":
            model = fastvit.reparameterize(model)
    model.load_state_dict(torch.load(path, weights_only=True), strict=True, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):  # a tensor no state dict holds
        raise RuntimeError(f"{spec.model}: not every tensor of the built model is in its kept weights")
    return model.eval()
