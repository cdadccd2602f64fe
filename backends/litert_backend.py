"""LiteRT (TFLite): export with litert-torch; time on the host CPU with ai-edge-litert's interpreter
(XNNPACK), or on an Android phone with LiteRT's `benchmark_model` over adb."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import adb
from .base import Backend, RemoteTiming, Session, module_version
from .benchmark_model import benchmark_model_args, parse_benchmark_model

BENCHMARK_MODEL_ENV = "HARNESS_BENCHMARK_MODEL"
WHERE_TO_GET_BENCHMARK_MODEL = (
    f"set ${BENCHMARK_MODEL_ENV} to LiteRT's benchmark_model binary for Android "
    "(the prebuilt android_aarch64_benchmark_model named in LiteRT's performance-measurement guide, "
    "or build //tflite/tools/benchmark:benchmark_model with Bazel for android_arm64)")


def interpreter_class():
    """ai-edge-litert's Interpreter; tflite_runtime's only where that is all there is (2.5-3x slower here)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime"
    except ImportError:
        return None, None


class LiteRtSession(Session):
    def __init__(self, path: Path, threads: int):
        interpreter, _ = interpreter_class()
        self.interpreter = interpreter(model_path=str(path), num_threads=threads)  # XNNPACK is the default
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]

    def prepare(self, x: np.ndarray) -> None:
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(x))  # copied into the arena

    def infer(self) -> None:
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        return np.array(self.interpreter.get_tensor(self.output_index), copy=True)


def fp16_weights(tflite: Path) -> None:
    """Rewrite a float32 .tflite with float16 weights (dequantized at load; activations stay fp32)."""
    from ai_edge_quantizer import quantizer

    recipe = [{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
               "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                             "compute_precision": "FLOAT", "explicit_dequantize": True,
                             "skip_checks": False, "min_weight_elements": 0}}]
    result = quantizer.Quantizer(str(tflite), recipe).quantize()
    result.export_model(str(tflite), overwrite=True)


class LiteRtBackend(Backend):
    name = "litert"
    runtime_module = "ai_edge_litert.interpreter"
    devices = ("cpu", "android")
    artifact_name = "model.tflite"
    precisions = ("fp32", "fp16")

    def unavailable_reason(self, device: str) -> str | None:
        if device == "cpu":
            return None if interpreter_class()[0] else "ai-edge-litert is not installed (pip install -e .[litert])"
        try:
            adb.resolve_serial(device, adb.attached_phones())
        except adb.AdbError as exc:
            return str(exc)
        if not self.benchmark_binary():
            return f"benchmark_model not found: {WHERE_TO_GET_BENCHMARK_MODEL}"
        return None

    @staticmethod
    def benchmark_binary() -> str | None:
        path = os.environ.get(BENCHMARK_MODEL_ENV)
        return path if path and Path(path).is_file() else None

    def versions(self) -> dict[str, str]:
        _, interpreter = interpreter_class()
        found = {k: v for k in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer", "tflite-runtime")
                 if (v := module_version(k))}
        return {**found, "interpreter": interpreter or "none"}

    def export(self, model, example, out_dir: Path, precision: str = "fp32") -> Path:
        try:
            import litert_torch
        except ImportError as exc:
            raise RuntimeError("exporting .tflite needs litert-torch (pip install -e .[litert])") from exc
        path = out_dir / self.artifact_name
        litert_torch.convert(model.eval(), (example,)).export(str(path))  # keeps the NCHW input layout
        if precision == "fp16":
            fp16_weights(path)
        return path

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return LiteRtSession(artifact, threads)

    def is_remote(self, device: str) -> bool:
        return device.startswith("android")

    def time_remote(self, artifact: Path, device: str, threads: int, policy, delegate: str = "xnnpack"
                    ) -> RemoteTiming:
        phone = adb.Phone(adb.resolve_serial(device, adb.attached_phones()))
        binary = self.benchmark_binary()
        if not binary:
            raise RuntimeError(f"benchmark_model not found: {WHERE_TO_GET_BENCHMARK_MODEL}")
        remote_model = f"{adb.REMOTE_DIR}/{artifact.parent.name}.tflite"
        remote_tool = f"{adb.REMOTE_DIR}/benchmark_model"
        phone.shell("mkdir", "-p", adb.REMOTE_DIR)
        phone.push(str(artifact), remote_model)
        phone.push(binary, remote_tool)
        phone.shell("chmod", "755", remote_tool)
        facts = phone.facts()
        thermal_before = phone.thermal_status()
        args = benchmark_model_args(remote_tool, remote_model, threads=threads, delegate=delegate,
                                    warmup_runs=policy.warmup_iterations, warmup_seconds=policy.warmup_seconds,
                                    num_runs=policy.min_iterations, min_seconds=policy.min_seconds,
                                    op_profiling=True)
        output = phone.shell(*args, timeout=policy.max_seconds * 3 + 300)
        parsed = parse_benchmark_model(output)
        return RemoteTiming(parsed, output_tail=output[-4000:], device_facts={
            **facts, "thermal_before": thermal_before, "thermal_after": phone.thermal_status(),
            "delegate": delegate, "delegate_note": parsed.delegate_note})
