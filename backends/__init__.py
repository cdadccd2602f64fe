"""One module per runtime; this registry is how the harness finds them (it never imports a runtime)."""
from __future__ import annotations

from .base import Backend, Session
from .onnxruntime_backend import OnnxRuntimeBackend
from .openvino_backend import OpenVinoBackend
from .torch_eager import TorchBackend

BACKENDS: dict[str, Backend] = {b.name: b for b in (TorchBackend(), OnnxRuntimeBackend(), OpenVinoBackend())}

__all__ = ["BACKENDS", "Backend", "Session"]
