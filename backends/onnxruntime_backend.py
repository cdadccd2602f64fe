"""ONNX Runtime: CPU execution provider here; CUDA and TensorRT providers where a GPU is present."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, KeepFloat, Session, calibration_batches, module_version
from .onnx_export import INPUT_NAME, export_onnx
from .onnx_quantize import qdq_coverage, quantize_qdq
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
        self.path, self.providers, self.threads = path, providers, threads
        self.session = self._session()
        wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        if self.session.get_providers()[0] != wanted:  # ORT silently falls back; we do not
            raise RuntimeError(f"onnxruntime did not use {wanted} (it chose {self.session.get_providers()[0]})")
        self.binding = self.session.io_binding()
        self.output_name = self.session.get_outputs()[0].name
        self.device = "cpu" if wanted == "CPUExecutionProvider" else "cuda"

    def _session(self, profile_dir: Path | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin-wait between runs (ORT's default). Measured here on t8, 2 threads:
        # switching spinning off made runs 30-40% slower, so it stays on; the harness instead
        # keeps every other thread pool (torch's) idle in this process, see harness/worker.py.
        options.intra_op_num_threads = self.threads
        if profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_dir / "ort")
            options.optimized_model_filepath = str(profile_dir / "optimized.onnx")  # names the profile uses
            # its weights in a file of their own: _node_facts reads the graph alone (inline, a large model's
            # weights were parsed once more beside two sessions: ma36's profile held 0.5 GB over its timing)
            options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                             "optimized.weights")
            options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                             "1024")
        # ORT's WeightBiasQuantization pass quantizes the float weights of a Conv or Gemm that sits between a
        # DequantizeLinear and a QuantizeLinear, so a node a mixed int8 recipe left in float would run as
        # QLinearConv all the same: off, the session runs the QDQ graph as written (full int8 and fp32 graphs
        # give it nothing to do).
        return ort.InferenceSession(str(self.path), options, providers=self.providers,
                                    disabled_optimizers=["WeightBiasQuantization"])

    def prepare(self, x: np.ndarray) -> None:
        import onnxruntime as ort

        # Input and output stay bound to runtime-owned memory: no per-run allocation or copy.
        self.input = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), self.device, 0)
        self.binding.bind_ortvalue_input(INPUT_NAME, self.input)
        self.binding.bind_output(self.output_name, self.device)

    def infer(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def output(self) -> np.ndarray:
        return self.binding.copy_outputs_to_cpu()[0]

    def profile(self, iterations: int) -> list[dict]:
        """ONNX Runtime's own session profiling, from a session made for it (profiling costs time). It replaces
        the timing session, whose timing is over: the two side by side held a second copy of the model's weights
        (ma36: the peak of a whole cold CPU sweep, 1.96 GiB). The agreement that follows runs through it, with
        profiling ended: the same graph, optimized the same way."""
        import json
        import tempfile

        self.session = self.binding = None
        with tempfile.TemporaryDirectory() as tmp:
            session = self._session(Path(tmp))
            binding = session.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, self.input)
            binding.bind_output(self.output_name, self.device)
            for _ in range(iterations):
                session.run_with_iobinding(binding)
            events = json.loads(Path(session.end_profiling()).read_text())
            shapes = _node_facts(Path(tmp) / "optimized.onnx")
        self.session, self.binding = session, binding
        rows: dict[str, dict] = {}
        for event in events:
            if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
                continue
            node = event["name"][: -len("_kernel_time")]
            facts = shapes.get(node, {})
            op_type = event["args"].get("op_name", "?") + (" (constant weights)" if facts.get("weights") else "")
            row = rows.setdefault(node, {"op_name": node, "op_type": op_type, "calls": 1, "total_ms": 0.0,
                                         "kernel": facts.get("kernel"), "depthwise": facts.get("depthwise", False)})
            row["total_ms"] += event["dur"] / 1e3 / iterations
        return list(rows.values())


def _node_facts(optimized: Path) -> dict[str, dict]:
    """node name -> facts the profile lacks, from ORT's optimized graph: a convolution's kernel size
    and depthwise-ness; whether a MatMul/Gemm multiplies by constant weights (a linear layer, unlike
    attention's Q K^T and A V, whose operands are both activations)."""
    import onnx

    graph = onnx.load(str(optimized), load_external_data=False).graph
    weights = {init.name: list(init.dims) for init in graph.initializer}
    found = {}
    for node in graph.node:
        if "MatMul" in node.op_type or "Gemm" in node.op_type:
            b = 3 if node.op_type in ("QLinearMatMul", "QGemm") else 1  # int8 kernels: (a, a_scale, a_zp, b, ...)
            found[node.name] = {"weights": len(node.input) > b and node.input[b] in weights}
        if "Conv" not in node.op_type:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = 3 if node.op_type == "QLinearConv" else 1  # QLinearConv(x, x_scale, x_zero_point, w, ...)
        kernel = attrs.get("kernel_shape") or (weights.get(node.input[w], [None])[-1:] if len(node.input) > w else None)
        dims = weights.get(node.input[w]) if len(node.input) > w else None
        group = attrs.get("group", 1)
        found[node.name] = {"kernel": (kernel or [None])[-1],
                            "depthwise": bool(dims) and group > 1 and dims[1] == 1}
    return found


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    runtime_module = "onnxruntime"
    devices = ("cpu", "gpu")
    artifact_name = "model.onnx"
    precisions = ("fp32", "int8")  # int8: static QDQ from onnxruntime.quantization
    keeps_float = True  # the quantizer's nodes_to_exclude

    def precision_reason(self, device: str, precision: str) -> str | None:
        if precision == "int8" and device == "gpu":
            return "ONNX Runtime's CUDA provider runs few int8 kernels; int8 on NVIDIA GPUs is the tensorrt target"
        return None

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

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None,
               keep_float: KeepFloat | None = None, weights_file: bool = True) -> Path:
        """fp32: the graph in model.onnx, its weights in model.onnx.data beside it unless `weights_file` is False
        (onnx_export.export_onnx: the export's peak memory); int8: the calibrated QDQ graph, one file."""
        if precision == "int8":
            batches = calibration_batches(calibration, self.name)
            return quantize_qdq(model, example, out_dir / self.artifact_name, batches, keep_float=keep_float)
        return export_onnx(model, example, out_dir / self.artifact_name, weights_file=weights_file)

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        return qdq_coverage(Path(artifact))

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return OrtSession(artifact, provider_list(self.provider(device), precision, None), threads)


class OrtTensorRtBackend(OnnxRuntimeBackend):
    """ONNX Runtime's TensorRT execution provider (it builds its own engine from the ONNX file)."""

    name = "ort-tensorrt"
    devices = ("gpu",)
    precisions = ("fp32", "fp16")
    keeps_float = False

    def precision_reason(self, device: str, precision: str) -> str | None:
        return None

    def provider(self, device: str) -> str:
        return "TensorrtExecutionProvider"

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        cache = artifact.parent / f"trt-cache-{precision}"
        cache.mkdir(exist_ok=True)
        return OrtSession(artifact, provider_list(self.provider(device), precision, cache), threads)
