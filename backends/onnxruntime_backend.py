"""ONNX Runtime: CPU execution provider here; CUDA and TensorRT providers where a GPU is present."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Session, module_version
from .onnx_export import INPUT_NAME, export_onnx

PROVIDERS = {"cpu": "CPUExecutionProvider", "gpu": "CUDAExecutionProvider"}


class OrtSession(Session):
    def __init__(self, path: Path, provider: str, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin-wait between runs (ORT's default). Measured here on t8, 2 threads:
        # switching spinning off made runs 30-40% slower, so it stays on; the harness instead
        # keeps every other thread pool (torch's) idle in this process, see harness/worker.py.
        self.session = ort.InferenceSession(str(path), options, providers=[provider])
        self.binding = self.session.io_binding()
        self.output_name = self.session.get_outputs()[0].name
        self.device = "cuda" if provider == "CUDAExecutionProvider" else "cpu"

    def prepare(self, x: np.ndarray) -> None:
        import onnxruntime as ort

        # Input and output stay bound to runtime-owned memory: no per-run allocation or copy.
        self.input = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), self.device, 0)
        self.binding.bind_ortvalue_input(INPUT_NAME, self.input)
        self.binding.bind_output(self.output_name, self.device)

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def output(self) -> np.ndarray:
        return self.binding.copy_outputs_to_cpu()[0]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "gpu")
    artifact_name = "model.onnx"

    def unavailable_reason(self, device: str) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (pip install -e .[onnxruntime])"
        if PROVIDERS[device] not in ort.get_available_providers():
            return f"{PROVIDERS[device]} is not in this onnxruntime build"
        if device == "gpu":
            import torch

            if not torch.cuda.is_available():
                return "no CUDA device visible"
        return None

    def versions(self) -> dict[str, str]:
        return {k: v for k in ("onnxruntime", "onnx", "onnxscript") if (v := module_version(k))}

    def export(self, model, example, out_dir: Path) -> Path:
        return export_onnx(model, example, out_dir / self.artifact_name)

    def load(self, model, artifact, device, threads) -> Session:
        return OrtSession(artifact, PROVIDERS[device], threads)
