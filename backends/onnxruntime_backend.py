"""ONNX Runtime: CPU execution provider here; CUDA and TensorRT providers where a GPU is present."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Session, module_version
from .onnx_export import INPUT_NAME, export_onnx
from .tensorrt_backend import cuda_reason

PROVIDERS = {"cpu": "CPUExecutionProvider", "gpu": "CUDAExecutionProvider"}


def provider_list(provider: str, precision: str, cache_dir: Path | None) -> list:
    """The providers argument of InferenceSession: the chosen one first, CPU as ORT's fallback."""
    if provider == "TensorrtExecutionProvider":
        options = {"trt_fp16_enable": precision == "fp16", "trt_engine_cache_enable": cache_dir is not None}
        if cache_dir is not None:
            options["trt_engine_cache_path"] = str(cache_dir)
        return [(provider, options), "CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "CUDAExecutionProvider":
        return [provider, "CPUExecutionProvider"]
    return [provider]


class OrtSession(Session):
    def __init__(self, path: Path, providers: list, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin-wait between runs (ORT's default). Measured here on t8, 2 threads:
        # switching spinning off made runs 30-40% slower, so it stays on; the harness instead
        # keeps every other thread pool (torch's) idle in this process, see harness/worker.py.
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        if self.session.get_providers()[0] != wanted:  # ORT silently falls back; we do not
            raise RuntimeError(f"onnxruntime did not use {wanted} (it chose {self.session.get_providers()[0]})")
        self.binding = self.session.io_binding()
        self.output_name = self.session.get_outputs()[0].name
        self.device = "cpu" if wanted == "CPUExecutionProvider" else "cuda"

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

    def provider(self, device: str) -> str:
        return PROVIDERS[device]

    def unavailable_reason(self, device: str) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (pip install -e .[onnxruntime])"
        if self.provider(device) not in ort.get_available_providers():
            return f"{self.provider(device)} is not in this onnxruntime build"
        return cuda_reason() if device == "gpu" else None

    def versions(self) -> dict[str, str]:
        return {k: v for k in ("onnxruntime", "onnxruntime-gpu", "onnx", "onnxscript") if (v := module_version(k))}

    def export(self, model, example, out_dir: Path, precision: str = "fp32") -> Path:
        return export_onnx(model, example, out_dir / self.artifact_name)

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return OrtSession(artifact, provider_list(self.provider(device), precision, None), threads)


class OrtTensorRtBackend(OnnxRuntimeBackend):
    """ONNX Runtime's TensorRT execution provider (it builds its own engine from the ONNX file)."""

    name = "ort-tensorrt"
    devices = ("gpu",)
    precisions = ("fp32", "fp16")

    def provider(self, device: str) -> str:
        return "TensorrtExecutionProvider"

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        cache = artifact.parent / f"trt-cache-{precision}"
        cache.mkdir(exist_ok=True)
        return OrtSession(artifact, provider_list(self.provider(device), precision, cache), threads)
