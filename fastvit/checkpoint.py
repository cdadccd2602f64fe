"""Loading the checkpoints users have: timm `fastvit_*` state dicts and Apple's `ml-fastvit` files.

Accepted: in-memory dicts, `.pth` / `.pth.tar` (plain or `{"state_dict": ...}`), `.safetensors`.
Files are read with `torch.load(weights_only=True)`: a checkpoint is untrusted input.

Apple's layout differs from ours (timm's) in names only:
  patch_embed -> stem, network.<i> (a flat list of stages, downsamplers and positional encodings)
  -> stages.<s>.{blocks,downsample,pos_emb}, rbr_conv/rbr_scale/rbr_skip -> conv_kxk/conv_scale/
  identity, lkb_origin -> large_conv, convffn -> mlp, pe -> pos_enc, se.reduce/expand -> se.fc1/fc2,
  layer scales are bare parameters (-> `.gamma`), conv_exp -> final_conv, head -> head.fc.
  In the fused `*_reparam` files every fused conv is `reparam_conv` except the large-kernel
  patch-embedding conv, which is `lkb_reparam`.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .model import FastViT, create_model
from .variants import VARIANTS


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


def load_checkpoint(model: FastViT, source: str | os.PathLike | Mapping[str, torch.Tensor]) -> FastViT:
    """Load weights from a file path or a state dict into `model` (in place) and return it.

    Raises CheckpointError with one readable sentence when the file cannot be read or when its
    keys or shapes do not fit the model's variant and form.
    """
    if not isinstance(model, FastViT):
        raise CheckpointError(f"load_checkpoint expects a FastViT model, got {type(model).__name__}")
    raw = _unwrap(read_state_dict(source) if not isinstance(source, Mapping) else dict(source))
    state = _to_our_layout(raw, model)
    _check_fits(state, model, raw)
    # Checkpoints saved without BatchNorm's step counters keep the model's own.
    own = model.state_dict()
    for key in own.keys() - state.keys():
        state[key] = own[key]
    model.load_state_dict(state, strict=True)
    return model


def read_state_dict(path: str | os.PathLike) -> dict:
    """Read a checkpoint file into a dict without executing any pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise CheckpointError(f"reading {path.name} needs the 'safetensors' package (pip install safetensors)") from exc
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    if not _looks_like_torch_save(path):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: torch.save writes a zip archive (a pickle "
                              "before torch 1.6), and this file is neither")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain containers; refusing to unpickle it "
            f"(weights_only=True). Re-save just the state dict."
        ) from exc
    except Exception as exc:  # a damaged pickle fails with whatever the unpickler trips on (KeyError, ...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {first}") from exc


def _looks_like_torch_save(path: Path) -> bool:
    """torch.save's zip archive, or the pickle (protocol 2+, first byte 0x80) of its legacy format."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _unwrap(obj) -> dict[str, torch.Tensor]:
    """Find the state dict inside a training checkpoint and drop DataParallel's `module.` prefix."""
    while isinstance(obj, Mapping) and not _looks_like_state_dict(obj):
        for wrapper in ("state_dict", "model", "state_dict_ema", "model_ema"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
        else:
            raise CheckpointError(f"no state dict found in checkpoint (top-level keys: {_first(obj.keys())})")
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"a checkpoint must hold a dict of tensors, found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint entries that are not tensors: {_first(bad)}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _looks_like_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def is_apple_layout(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("network.", "patch_embed.", "conv_exp.")) for k in state)


# Apple name -> our name, for single key components.
_APPLE_COMPONENTS = {
    "rbr_conv": "conv_kxk", "rbr_scale": "conv_scale", "rbr_skip": "identity",
    "lkb_origin": "large_conv", "lkb_reparam": "reparam_conv",
    "convffn": "mlp", "pe": "pos_enc", "reduce": "fc1", "expand": "fc2",
}
_LAYER_SCALE = re.compile(r"layer_scale(_[12])?$")


def apple_to_ours(state: Mapping[str, torch.Tensor], model: FastViT) -> dict[str, torch.Tensor]:
    """Rename an Apple `ml-fastvit` state dict (fused or not) to our layout for `model`'s variant."""
    network = _apple_network_prefixes(model)
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "network" and len(parts) > 2 and parts[1].isdigit():
            index = int(parts[1])
            if index not in network:  # a deeper variant's checkpoint: keep it so the fit check names it
                out[key] = value
                continue
            parts = network[index].split(".") + parts[2:]
        elif parts[0] == "patch_embed":
            parts[0] = "stem"
        elif parts[0] == "conv_exp":
            parts[0] = "final_conv"
        elif parts[0] == "head" and len(parts) == 2:
            parts = ["head", "fc", parts[1]]
        parts = [_APPLE_COMPONENTS.get(p, p) for p in parts]
        if _LAYER_SCALE.match(parts[-1]):
            parts.append("gamma")
        out[".".join(parts)] = value
    return out


def _apple_network_prefixes(model: FastViT) -> dict[int, str]:
    """Apple's `network` list is, per stage: [downsample (not stage 0)], [pos. encoding], blocks."""
    prefixes, index = {}, 0
    for s, stage in enumerate(model.stages):
        for part in ("downsample", "pos_emb"):
            if not isinstance(getattr(stage, part), nn.Identity):
                prefixes[index] = f"stages.{s}.{part}"
                index += 1
        prefixes[index] = f"stages.{s}.blocks"
        index += 1
    return prefixes


def _to_our_layout(raw: Mapping[str, torch.Tensor], model: FastViT) -> dict[str, torch.Tensor]:
    return apple_to_ours(raw, model) if is_apple_layout(raw) else dict(raw)


def _check_fits(state: Mapping[str, torch.Tensor], model: FastViT, raw: Mapping[str, torch.Tensor]) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    if not (missing or unexpected or wrong_shape):
        return
    form = "inference" if model.stem[0].reparam_conv is not None else "training"
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (first: {_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (first: {_first(unexpected)})")
    if wrong_shape:
        k = wrong_shape[0]
        problems.append(f"{len(wrong_shape)} keys of the wrong shape (first: {k} is "
                        f"{tuple(state[k].shape)} in the checkpoint, {tuple(own[k].shape)} in the model)")
    hint = _guess_fit(raw, model)
    raise CheckpointError(
        f"checkpoint does not fit fastvit_{model.variant.name} ({form} form, {model.num_classes} classes): "
        + "; ".join(problems) + (f". {hint}" if hint else "")
    )


def _guess_fit(raw: Mapping[str, torch.Tensor], model: FastViT) -> str:
    """Name the variant/form/class count the checkpoint does fit, if any (models built on 'meta')."""
    head = raw.get("head.fc.weight", raw.get("head.weight"))
    num_classes = head.shape[0] if head is not None and head.ndim == 2 else model.num_classes
    for name in VARIANTS:
        for inference_mode in (False, True):
            with torch.device("meta"):
                candidate = create_model(name, num_classes=num_classes, inference_mode=inference_mode)
            if _shapes(_to_our_layout(raw, candidate)) == _shapes(candidate.state_dict()):
                form = "inference_mode=True" if inference_mode else "inference_mode=False"
                return f"It fits create_model('{name}', num_classes={num_classes}, {form})"
    return ""


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def _first(keys, n: int = 3) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")
