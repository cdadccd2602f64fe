"""How far a run's artifact is from the fp32 PyTorch model on photographs it was not calibrated on: top-1
agreement and logit cosine similarity (and top-1 accuracy on a labelled folder, where one is given).

Parity (harness.measure.worker.check_parity) asks whether an export computes the same function on one input;
agreement asks what a low precision costs the model's answers, which is what decides whether an int8
artifact can stand in for the float one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..protocol import Agreement
from .cache import write_whole
from .images import ImageSet


def outputs(session, images: ImageSet, batch: int) -> np.ndarray:
    """The session's logits for every image, run in the artifact's own batch size."""
    found = []
    for chunk in images.batches(batch):
        session.prepare(np.ascontiguousarray(chunk))
        session.infer()
        found.append(session.output().reshape(len(chunk), -1))
    return np.concatenate(found)[:len(images.images)]


def reference(model: torch.nn.Module, images: ImageSet, batch: int) -> np.ndarray:
    with torch.inference_mode():
        found = [model(torch.from_numpy(chunk)).float().reshape(len(chunk), -1).numpy()
                 for chunk in images.batches(batch)]
    return np.concatenate(found)[:len(images.images)]


def compare(found: np.ndarray, expected: np.ndarray) -> tuple[float, np.ndarray]:
    """(top-1 agreement, per-image cosine similarity) of two (images, classes) logit arrays."""
    top1 = float(np.mean(found.argmax(1) == expected.argmax(1)))
    norms = np.linalg.norm(found, axis=1) * np.linalg.norm(expected, axis=1)
    cosine = (found * expected).sum(1) / np.maximum(norms, 1e-12)
    return top1, cosine


def cached_reference(model, images: ImageSet, batch: int, path: Path | None) -> np.ndarray:
    """`reference`, kept in `path` (a .npy named by everything that decides it): the fp32 model is the same for
    every target of a sweep, and a large one takes seconds per image on the one thread the worker gives torch.
    `model`: a module, or a built.ModelOnDemand, built on a miss only."""
    if path is not None and path.exists():
        return np.load(path)
    from .built import module_of  # a ModelOnDemand is built here, on a miss only

    found = reference(module_of(model), images, batch)
    if path is not None:
        write_whole(path, lambda temporary: np.save(temporary, found))
    return found


def agreement(session, model: torch.nn.Module, images: ImageSet, batch: int,
              labelled: tuple[ImageSet, np.ndarray] | None = None, reference_path: Path | None = None) -> Agreement:
    """The session against the fp32 `model` on `images`; with `labelled` (images, class indices) also its
    top-1 accuracy there."""
    expected = cached_reference(model, images, batch, reference_path)
    top1, cosine = compare(outputs(session, images, batch), expected)
    accuracy = None
    if labelled is not None:
        eval_images, labels = labelled
        accuracy = float(np.mean(outputs(session, eval_images, batch).argmax(1) == labels))
    return Agreement(images=len(images.images), top1=top1, cosine=float(cosine.mean()),
                     cosine_min=float(cosine.min()), held_out=images.identity, accuracy_top1=accuracy,
                     eval_images=len(labelled[1]) if labelled is not None else None)
