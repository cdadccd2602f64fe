"""LiteRT (TFLite): export with litert-torch; time on the host CPU with ai-edge-litert's interpreter
(XNNPACK), or on an Android phone with LiteRT's `benchmark_model` over adb."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from . import adb
from .base import (Backend, KeepFloat, RemoteTiming, Session, calibration_batches, conv_facts, module_version,
                   tally_precision)
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
        self.input = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]

    def prepare(self, x: np.ndarray) -> None:
        # an int8 model takes int8 input: quantized here, outside the timed region, as a camera pipeline
        # would hand it over already quantized
        value = quantize(x, *self.input["quantization"], self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], value)  # copied into the arena

    def infer(self) -> None:
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        value = np.array(self.interpreter.get_tensor(self.output_details["index"]), copy=True)
        return dequantize(value, *self.output_details["quantization"])


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """A float array as the (u)int8 tensor of this scale and zero point; float tensors pass through."""
    if not np.issubdtype(dtype, np.integer):
        return np.ascontiguousarray(x, dtype=dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(value: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if not np.issubdtype(value.dtype, np.integer):
        return value.astype(np.float32, copy=False)
    return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)


def pt2e_int8(model, example, batches: list[np.ndarray], keep_float: KeepFloat | None = None):
    """litert-torch's own PT2E quantizer (per-channel symmetric int8 weights, int8 activations observed on the
    calibration batches; the ops `keep_float` names left in float); returns (quantized module, its quantizer)."""
    from litert_torch.quantize import pt2e_quantizer

    from .pt2e import pt2e_quantized

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    return pt2e_quantized(model, example, quantizer, batches, keep_float, fold_quantize=False), quantizer


@contextlib.contextmanager
def strict_qdq(strict: bool):
    """Convert in the LiteRT converter's strict QDQ mode while `strict`: the converter then quantizes exactly
    the ops the PT2E graph quantizes. By default it also quantizes any float op between a dequantize and a
    quantize (weights included), which would undo a mixed recipe's float ops, and ops the quantizer left alone
    (GELU) that sit inside a quantized region. litert-torch's default converter has no argument for the mode
    (its _litert_converter_flags reach only the TensorFlow-based V2 converter), so the config it builds is
    given the mode here."""
    if not strict:
        yield
        return
    try:
        from litert_converter.mlir._mlir_libs import converter_api_ext
    except ImportError as exc:
        raise RuntimeError("this litert-torch has no LiteRT converter config to keep ops in float") from exc
    default = converter_api_ext.ConvertToTFLConfig
    if not hasattr(default(), "strict_qdq_mode"):
        raise RuntimeError("this LiteRT converter has no strict QDQ mode, so it cannot keep ops in float")

    def strict_config():
        config = default()
        config.strict_qdq_mode = True
        return config

    converter_api_ext.ConvertToTFLConfig = strict_config
    try:
        yield
    finally:
        converter_api_ext.ConvertToTFLConfig = default


DATA_MOVEMENT = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "TRANSPOSE", "PAD", "CONCATENATION", "SPLIT", "GATHER",
                 "SLICE", "STRIDED_SLICE", "SQUEEZE", "EXPAND_DIMS", "CAST", "DELEGATE"}
LOW_TYPES = (np.int8, np.uint8, np.int16)


def tflite_precisions(path: Path) -> list[dict]:
    """Coverage rows from the .tflite's own tensor types: an op whose data input is an integer tensor runs
    integer kernels; FLOPs of convolutions and fully connected layers from their tensors' shapes."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # the model's own graph, before a delegate replaces parts of it
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    rows: dict = {}
    for op in interpreter._get_ops_details():  # the interpreter's only listing of ops and their tensors
        name = op["op_name"]
        if name in DATA_MOVEMENT or not len(op["inputs"]) or op["inputs"][0] < 0:
            continue
        data, out = tensors[op["inputs"][0]], tensors[op["outputs"][0]]
        out_numel = int(np.prod(out["shape"]))
        facts = {"flops": 0, "kernel": None, "depthwise": False}
        if name == "CONV_2D":  # weights [O, kh, kw, I]
            o, kh, kw, i = tensors[op["inputs"][1]]["shape"]
            facts = conv_facts(out_numel, [o, i, kh, kw], int(data["shape"][-1]))
        elif name == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, C]
            _, kh, kw, c = tensors[op["inputs"][1]]["shape"]
            facts = conv_facts(out_numel, [c, 1, kh, kw], int(data["shape"][-1]))
        elif name in ("FULLY_CONNECTED", "BATCH_MATMUL"):
            facts["flops"] = 2 * out_numel * int(data["shape"][-1])
        tally_precision(rows, name, data["dtype"] in LOW_TYPES, **facts)
    return list(rows.values())


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
    precisions = ("fp32", "fp16", "int8")  # fp16: float16 weights; int8: static PT2E, int8 input and output
    keeps_float = True  # ops marked annotated before the PT2E quantizer annotates (backends.pt2e)

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

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None,
               keep_float: KeepFloat | None = None) -> Path:
        try:
            import litert_torch
        except ImportError as exc:
            raise RuntimeError("exporting .tflite needs litert-torch (pip install -e .[litert])") from exc
        path = out_dir / self.artifact_name
        if precision == "int8":
            from litert_torch.quantize.quant_config import QuantConfig

            quantized, quantizer = pt2e_int8(model, example, calibration_batches(calibration, self.name), keep_float)
            with strict_qdq(keep_float is not None):
                converted = litert_torch.convert(quantized, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
        else:
            # Constants handled lazily (litert-torch's lightweight_conversion; folded at the end by its runtime
            # constant folding): the same operators and the same outputs, bit for bit, on t8 and ma36, while
            # ma36's export peaks 0.3 GB lower (0.51 GB above the built model, 0.81 before): a cold sweep's peak.
            converted = litert_torch.convert(model.eval(), (example,), lightweight_conversion=True)
        converted.export(str(path))  # keeps the NCHW input layout
        if precision == "fp16":
            fp16_weights(path)
        return path

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        return tflite_precisions(Path(artifact))

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
