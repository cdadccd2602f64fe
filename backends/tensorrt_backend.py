"""TensorRT on an NVIDIA GPU: an engine built from our ONNX export with the tensorrt Python API,
timed with CUDA events around `execute_async_v3` on buffers already on the device (host-device
copies are outside the timed region; the run's environment says so).

Nothing imports tensorrt until a GPU target is used; without CUDA or tensorrt the targets are
unavailable with the reason.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Session, calibration_batches, module_version
from .onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx
from .onnx_quantize import qdq_coverage, quantize_qdq

WORKSPACE_BYTES = 1 << 30
TIMING_NOTE = "CUDA-event time of execute_async_v3 on device buffers; host<->device copies excluded"


def builder_flags(precision: str) -> tuple[list[str], list[str]]:
    """(BuilderFlag names to set, names to clear) for a precision.

    fp32 clears TF32, which TensorRT otherwise uses for fp32 convolutions and matmuls on Ampere
    and newer: an "fp32" number must be fp32 arithmetic. fp16 lets TensorRT pick fp16 kernels
    (fp32 where faster or needed), as the paper's GPU numbers did. int8 builds a QDQ graph (explicit
    quantization): the quantized layers run in int8, the others in fp16 where TensorRT finds it faster.
    """
    if precision == "fp32":
        return [], ["TF32"]
    if precision == "fp16":
        return ["FP16"], []
    if precision == "int8":
        return ["INT8", "FP16"], []
    raise ValueError(f"TensorRT precision must be fp32, fp16 or int8, got {precision!r}")


def trtexec_args(onnx: str, precision: str, export_times: str | None = None) -> list[str]:
    """The equivalent trtexec command line, for cross-checking our numbers with NVIDIA's tool."""
    set_flags, cleared = builder_flags(precision)
    args = ["trtexec", f"--onnx={onnx}", "--useCudaGraph=false", "--noDataTransfers",
            f"--memPoolSize=workspace:{WORKSPACE_BYTES >> 20}M"]
    args += ["--int8"] if "INT8" in set_flags else []
    args += ["--fp16"] if "FP16" in set_flags else []
    args += ["--noTF32"] if "TF32" in cleared else []
    args += [f"--exportTimes={export_times}"] if export_times else []
    return args


def tensorrt_qdq_onnx(model, example, path: Path, calibration: list) -> Path:
    """The QDQ ONNX TensorRT builds an int8 engine from: ONNX Runtime's static quantizer with symmetric int8
    activations (zero point 0), the only kind TensorRT's explicit quantization accepts."""
    return quantize_qdq(model, example, path, calibration, symmetric=True)


def cuda_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "no CUDA device visible"


def build_engine(onnx_path: Path, engine_path: Path, precision: str) -> Path:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    to_set, to_clear = builder_flags(precision)
    for flag in to_set:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in to_clear:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build an engine (see its log above)")
    engine_path.write_bytes(bytes(serialized))
    return engine_path


class TensorRtSession(Session):
    def __init__(self, path: Path):
        import tensorrt as trt
        import torch

        self.torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.buffers = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            self.buffers[name] = torch.empty(tuple(self.engine.get_tensor_shape(name)), dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())
        self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def prepare(self, x: np.ndarray) -> None:
        self.buffers[INPUT_NAME].copy_(self.torch.from_numpy(x))
        self.torch.cuda.synchronize()

    def infer(self) -> int:
        self.start.record(self.stream)
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.end.record(self.stream)
        self.end.synchronize()
        return int(self.start.elapsed_time(self.end) * 1e6)  # ms -> ns, measured by the GPU

    def output(self) -> np.ndarray:
        return self.buffers[OUTPUT_NAME].float().cpu().numpy()

    def device_memory_mb(self) -> float | None:
        """The engine's activation memory (what its execution context allocates) and the I/O buffers."""
        scratch = getattr(self.engine, "device_memory_size_v2", None)
        scratch = scratch if scratch is not None else self.engine.device_memory_size
        io = sum(b.numel() * b.element_size() for b in self.buffers.values())
        return (scratch + io) / 2**20


class TensorRtBackend(Backend):
    name = "tensorrt"
    runtime_module = "tensorrt"
    devices = ("gpu",)
    artifact_name = "model.engine"
    precisions = ("fp32", "fp16", "int8")
    timing = TIMING_NOTE
    export_needs_device = True  # an engine is compiled for the GPU it will run on

    def unavailable_reason(self, device: str) -> str | None:
        if not module_version("tensorrt") and not _importable("tensorrt"):
            return "tensorrt is not installed (NVIDIA's wheels: pip install tensorrt, on a CUDA machine)"
        return cuda_reason()

    def versions(self) -> dict[str, str]:
        found = {"tensorrt": module_version("tensorrt") or "?"}
        try:
            import torch

            if torch.cuda.is_available():
                found["gpu"] = torch.cuda.get_device_name(0)  # an engine is built for one GPU model
        except ImportError:
            pass
        return found

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None) -> Path:
        if precision == "int8":
            batches = calibration_batches(calibration, self.name)
            onnx = tensorrt_qdq_onnx(model, example, out_dir / "model.onnx", batches)
        else:
            onnx = export_onnx(model, example, out_dir / "model.onnx")
        return build_engine(onnx, out_dir / self.artifact_name, precision)

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        """From the QDQ graph the engine was built from (TensorRT fuses each DequantizeLinear -> op ->
        QuantizeLinear group into an int8 kernel, as ONNX Runtime does)."""
        onnx = Path(artifact).parent / "model.onnx"
        return qdq_coverage(onnx) if onnx.exists() else None

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return TensorRtSession(artifact)


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None
