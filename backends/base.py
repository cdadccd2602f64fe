"""The contract every runtime module implements; nothing here imports a runtime.

A backend turns a torch module into its artifact (`export`), and an artifact into a `Session`
that runs one inference per `run()` call on inputs placed beforehand by `prepare()`.
Runtimes are imported inside methods, so a missing runtime costs nothing until it is used.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch


class Session(ABC):
    """One loaded model on one device, ready to be timed."""

    @abstractmethod
    def prepare(self, x: np.ndarray) -> None:
        """Copy the input into the runtime's own memory, outside the timed region."""

    @abstractmethod
    def run(self) -> None:
        """One inference on the prepared input; the only thing inside the timed region."""

    @abstractmethod
    def output(self) -> np.ndarray:
        """The last run's output as float32 NCHW-order numpy (converted after timing)."""


class Backend(ABC):
    name: str
    devices: tuple[str, ...]
    artifact_name: str | None  # file name inside the cache entry; None when nothing is exported

    @abstractmethod
    def unavailable_reason(self, device: str) -> str | None:
        """None when (this backend, device) can run here, else a one-line reason."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the runtime packages, recorded with every run and in the cache key."""

    def export(self, model: torch.nn.Module, example: torch.Tensor, out_dir: Path) -> Path | None:
        """Write the artifact for `model` at `example`'s static shape into out_dir; return its path."""
        return None

    @abstractmethod
    def load(self, model: torch.nn.Module, artifact: Path | None, device: str, threads: int) -> Session:
        """A session for the artifact (or the module itself, for eager backends)."""


def module_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
