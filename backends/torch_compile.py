"""torch.compile (TorchInductor) on CPU and CUDA: what PyTorch users ship on servers.

The module is compiled for the run's static input shape when the session loads, so compilation is
never inside the timed region; its wall time is part of the load, as it is for an app. A cold load
compiles into an empty inductor cache (TORCHINDUCTOR_CACHE_DIR); a warm load resets dynamo, as a
new process would be, and compiles again from the cache the cold one filled.

Dynamo's own counters say how the model was captured: how many graphs (more than one: graph
breaks, each with dynamo's reason) and whether it recompiled after loading (a guard failed while
timing: the samples then include compilation).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Session, module_version
from .torch_eager import TorchBackend

MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes
# reduce-overhead replays CUDA graphs on a GPU (the H200 numbers); on a CPU it is default
DEFAULT_MODE = {"cpu": "default", "gpu": "reduce-overhead"}


class TorchCompileBackend(Backend):
    name = "torch-compile"
    devices = ("cpu", "gpu")
    artifact_name = None  # compiled in the process that times it
    precisions = TorchBackend.precisions
    compile_cache = True  # load(compile_cache=DIR): inductor's cache directory
    cache_filled_by_load = True  # a load compiles into its cache: the cold load fills what the warm one reuses
    load_needs_example = True  # compiled for the input's static shape and layout
    option_names = ("mode",)

    def __init__(self):
        self._eager = TorchBackend()

    def unavailable_reason(self, device: str) -> str | None:
        reason = self._eager.unavailable_reason(device)
        if reason:
            return reason
        if device == "gpu":
            try:
                import triton  # noqa: F401  inductor writes its GPU kernels in Triton
            except ImportError:
                return "inductor needs Triton for CUDA kernels (pip install triton)"
        return None

    def precision_reason(self, device: str, precision: str) -> str | None:
        return self._eager.precision_reason(device, precision)

    def target_options(self, device: str, asked: dict[str, str]) -> str:
        """The target's options for what a sweep asked (--compile-mode): empty for the device's default mode, so
        `torch-compile/cpu` is always the default and a target name says any other mode."""
        mode = asked.get("mode") or DEFAULT_MODE[device]
        if mode not in MODES:
            raise ValueError(f"unknown torch.compile mode {mode!r}; choose one of: {', '.join(MODES)}")
        return "" if mode == DEFAULT_MODE[device] else f"mode={mode}"

    def versions(self) -> dict[str, str]:
        found = self._eager.versions()
        if triton := module_version("triton"):  # read without importing it (the sweep's parent asks too)
            found["triton"] = triton
        return found

    def load(self, model, artifact, device, threads, precision="fp32", example: np.ndarray | None = None,
             compile_cache: Path | None = None, mode: str | None = None) -> Session:
        if example is None or compile_cache is None:
            raise ValueError("torch-compile compiles for an example input into an inductor cache: pass both")
        import torch

        from .compiled_session import CompiledSession

        return CompiledSession(model, torch.device("cuda" if device == "gpu" else "cpu"), threads, precision,
                               example, mode or DEFAULT_MODE[device], Path(compile_cache))
