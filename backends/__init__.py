"""One module per runtime; this registry is how the harness finds them (it never imports a runtime)."""
from __future__ import annotations

from .aihub import RUNTIMES as AIHUB_RUNTIMES
from .aihub import AIHubBackend
from .base import Backend, RemoteTiming, Session
from .coreml_backend import CoreMlBackend
from .executorch_backend import ExecuTorchBackend, ExecuTorchCoreMlBackend
from .litert_backend import LiteRtBackend
from .onnxruntime_backend import OnnxRuntimeBackend, OrtTensorRtBackend
from .openvino_backend import OpenVinoBackend
from .tensorrt_backend import TensorRtBackend
from .torch_compile import TorchCompileBackend
from .torch_eager import TorchBackend

BACKENDS: dict[str, Backend] = {b.name: b for b in (
    TorchBackend(), TorchCompileBackend(), OnnxRuntimeBackend(), OpenVinoBackend(), LiteRtBackend(), CoreMlBackend(),
    TensorRtBackend(), OrtTensorRtBackend(), ExecuTorchBackend(), ExecuTorchCoreMlBackend(),
    *(AIHubBackend(name) for name in AIHUB_RUNTIMES),
)}

__all__ = ["BACKENDS", "Backend", "RemoteTiming", "Session"]
