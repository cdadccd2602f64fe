"""A FastViT spec's built model, kept in the cache as its weights.

Building FastViT with meaningful random weights (randomized BatchNorm statistics and layer scales) and folding
it to its inference form takes 0.3-2 s per model on the one thread a worker gives torch, and a sweep builds the
same model once per target. The first build keeps the weights; later ones make the module on the meta device (no
initialisation) and take those weights as they are: the same tensors, so the same outputs and the same exports.
"""
from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import fastvit
from harness import baselines
from harness.measure.cache import cache_key, write_whole
from harness.spec import EXAMPLE_SEED, ModelSpec, fastvit_source_hash

FOLDER = "built-models"
OUTPUTS = "example-outputs"  # a spec's fp32 output on its example input, and its parameter bytes


class ModelOnDemand:
    """A job's model, built (or restored) the first time something calls for it, then kept.

    A kept worker timing an artifact already in the cache needs no torch module: the export is done, the reference
    output on the example input and on the photographs are kept per spec. Building it anyway cost a restore and a
    forward pass per run (about 0.5 s, 14 s of a warm sweep) and left its weights (176 MB for ma36) in the memory
    the runtime was measured beside."""

    def __init__(self, build: Callable[[], torch.nn.Module]):
        self._build, self._model = build, None

    def __call__(self) -> torch.nn.Module:
        if self._model is None:
            from harness.measure.footprint import release_freed

            self._model = self._build()
            # the training form's branches, folded away, go back to the OS before an export starts on top of them
            # (ma36: 265 MB held after the build, 187 MB after this)
            release_freed()
        return self._model


def module_of(model: torch.nn.Module | Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """A module as it is, or the module a ModelOnDemand (any callable without arguments) builds."""
    return model if isinstance(model, torch.nn.Module) else model()


def kept_output(spec: ModelSpec, cache_dir: Path, model: ModelOnDemand,
                example: torch.Tensor) -> tuple[np.ndarray, int]:
    """(fp32 output on `example`, parameter bytes) of the spec's model, kept in the cache: what every target's
    parity check compares with, the same for every target of a sweep."""
    from harness.measure.footprint import param_bytes

    key = cache_key({"spec": spec.as_dict(), "weights": spec.weights_id(), "fastvit": fastvit_source_hash(),
                     "baseline_init": baselines.INIT if spec.is_baseline else None, "example": EXAMPLE_SEED,
                     "torch": torch.__version__})
    path = Path(cache_dir) / OUTPUTS / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path) as kept:
                return kept["output"], int(kept["param_bytes"])
        except (OSError, ValueError, KeyError, EOFError):
            pass  # a damaged entry: computed again below, and replaced
    module = model()
    with torch.inference_mode():
        output = module(example).float().numpy()
    found = param_bytes(module)
    write_whole(path, lambda temporary: np.savez(temporary, output=output, param_bytes=np.int64(found)))
    return output, found


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
