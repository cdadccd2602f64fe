"""OpenVINO: CPU here; Intel GPU and NPU where the plugin reports them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (Backend, KeepFloat, Session, calibration_batches, conv_facts, cpu_has_bf16, module_version,
                   tally_precision)

OV_DEVICES = {"cpu": "CPU", "intel-gpu": "GPU", "npu": "NPU"}
# the CPU plugin's OPTIMIZATION_CAPABILITIES word for each half precision it computes natively
CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


class OpenVinoSession(Session):
    def __init__(self, path: Path, ov_device: str, threads: int, precision: str = "fp32",
                 compile_cache: Path | None = None):
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        self.core, self.path, self.device = ov.Core(), path, ov_device
        self.config = {hints.performance_mode: hints.PerformanceMode.LATENCY, props.num_streams: 1}
        if ov_device == "CPU":
            self.config[props.inference_num_threads] = threads
            # Asked for explicitly either way: left alone, OpenVINO runs bf16 on CPUs that have it, so an
            # fp32 target would silently be bf16 on one machine and f32 on the next. An int8 IR runs its
            # quantized layers in int8 and the rest in f32.
            wanted = {"bf16": ov.Type.bf16, "fp16": ov.Type.f16}.get(precision, ov.Type.f32)
            self.config[hints.inference_precision] = wanted
        if compile_cache is not None:  # OpenVINO's model cache: a compiled blob read back on the next load
            self.config[props.cache_dir] = str(compile_cache)
        self.compiled = self.core.compile_model(self.core.read_model(str(path)), ov_device, self.config)
        self.request = self.compiled.create_infer_request()

    def facts(self) -> dict:
        import openvino.properties.hint as hints

        try:  # what the plugin really runs, read back
            return {"runtime_precision": self.compiled.get_property(hints.inference_precision).get_type_name()}
        except RuntimeError:
            return {}

    def prepare(self, x: np.ndarray) -> None:
        import openvino as ov

        self.request.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))

    def infer(self) -> None:
        self.request.infer()  # no arguments: nothing converted or copied per call

    def output(self) -> np.ndarray:
        return np.array(self.request.get_output_tensor(0).data, copy=True)

    def profile(self, iterations: int) -> list[dict]:
        """OpenVINO's performance counters, from a separately compiled copy (counters cost time). It replaces
        the timed one, whose timing is over, rather than sit beside it with a second copy of the weights (as
        ONNX Runtime's profile does); the agreement that follows runs through it."""
        import openvino.properties as props

        example = self.request.get_input_tensor(0)
        self.compiled = self.request = None
        compiled = self.core.compile_model(self.core.read_model(str(self.path)), self.device,
                                           {**self.config, props.enable_profiling: True})
        request = compiled.create_infer_request()
        request.set_input_tensor(example)
        self.compiled, self.request = compiled, request
        weights = {op.get_friendly_name(): op for op in compiled.get_runtime_model().get_ordered_ops()}
        rows: dict[str, dict] = {}
        for _ in range(iterations):
            request.infer()
            for counter in request.profiling_info:
                row = rows.setdefault(counter.node_name, {
                    "op_name": counter.node_name, "op_type": counter.node_type, "calls": 1, "total_ms": 0.0,
                    **_conv_shape(weights.get(counter.node_name), counter.node_type)})
                row["total_ms"] += counter.real_time.total_seconds() * 1e3 / iterations
        return [r for r in rows.values() if r["total_ms"] > 0]


def _conv_shape(op, node_type: str) -> dict:
    """Kernel size and depthwise-ness of a (Group)Convolution from its weights' shape."""
    if op is None or "Convolution" not in node_type or op.get_input_size() < 2:
        return {"kernel": None, "depthwise": False}
    shape = op.input(1).get_partial_shape()
    if not shape.is_static:
        return {"kernel": None, "depthwise": False}
    dims = [d.get_length() for d in shape]
    # Convolution weights [O, I, kh, kw]; GroupConvolution [G, O/G, I/G, kh, kw], depthwise when I/G == 1
    return {"kernel": dims[-1], "depthwise": node_type == "GroupConvolution" and len(dims) == 5 and dims[2] == 1}


class OpenVinoBackend(Backend):
    name = "openvino"
    runtime_module = "openvino"
    devices = tuple(OV_DEVICES)
    artifact_name = "model.xml"
    # bf16/fp16: the fp32 IR, run in that precision by the CPU plugin where the CPU computes it;
    # int8: an IR quantized by NNCF (FakeQuantize before each quantized op)
    precisions = ("fp32", "bf16", "fp16", "int8")
    compile_cache = True
    keeps_float = True  # NNCF's ignored scope

    def precision_reason(self, device: str, precision: str) -> str | None:
        if precision in CAPABILITY and device != "cpu":
            return f"{precision} is asked of the CPU plugin here; other devices choose their own precision"
        if precision in CAPABILITY:
            capabilities = cpu_capabilities()
            if CAPABILITY[precision] not in capabilities:
                return (f"this CPU does not compute {precision} (OpenVINO's CPU plugin lists "
                        f"{', '.join(capabilities)})")
        return None

    def unavailable_reason(self, device: str) -> str | None:
        try:
            import openvino as ov
        except ImportError:
            return "openvino is not installed (pip install -e .[openvino])"
        present = ov.Core().available_devices
        if not any(d.split(".")[0] == OV_DEVICES[device] for d in present):
            return f"OpenVINO sees no {OV_DEVICES[device]} device (available: {', '.join(present) or 'none'})"
        return None

    def versions(self) -> dict[str, str]:
        return {"openvino": module_version("openvino") or "?"}

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None,
               keep_float: KeepFloat | None = None) -> Path:
        import openvino as ov

        # A static input shape: dynamic-shape IR is slower and benchmark_app refuses it.
        converted = ov.convert_model(model.eval(), example_input=example, input=[tuple(example.shape)])
        if precision == "int8":
            converted = nncf_int8(converted, calibration_batches(calibration, self.name), keep_float)
        path = out_dir / self.artifact_name
        ov.save_model(converted, str(path), compress_to_fp16=False)  # default would halve weights to fp16
        return path

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        """What the CPU plugin compiled each node to (the runtime model's runtimePrecision)."""
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(artifact)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return runtime_precisions(compiled.get_runtime_model())

    def load(self, model, artifact, device, threads, precision="fp32", compile_cache: Path | None = None) -> Session:
        return OpenVinoSession(artifact, OV_DEVICES[device], threads, precision, compile_cache)


def cpu_capabilities() -> list[str]:
    """What OpenVINO's CPU plugin says this CPU computes natively (FP32, BF16, FP16, INT8, ...)."""
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def nncf_int8(model, batches: list, keep_float: KeepFloat | None = None):
    """NNCF's post-training quantization (per-channel symmetric int8 weights, activation ranges observed on
    the calibration batches). The transformer model type keeps its quantization recipe for attention. The
    ops `keep_float` names go into NNCF's ignored scope: no FakeQuantize before them, so they run in float."""
    try:
        import nncf
    except ImportError as exc:
        raise RuntimeError("int8 OpenVINO IR needs NNCF (pip install nncf)") from exc
    ignored = nncf.IgnoredScope(names=float_op_names(model, keep_float)) if keep_float else None
    return nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                         model_type=nncf.ModelType.TRANSFORMER, ignored_scope=ignored)


def float_op_names(model, keep_float: KeepFloat) -> list[str]:
    """The friendly names of the float model's ops that `keep_float` keeps in float; a MatMul by a constant
    (a linear layer) is "MatMul (constant weights)", apart from attention's products of two activations."""
    found = []
    for op in model.get_ordered_ops():
        op_type = op.get_type_name()
        if op_type in ("Parameter", "Constant", "Result", "Convert"):
            continue
        if op_type == "MatMul" and _constant_source(op.input(1)):
            op_type = "MatMul (constant weights)"
        shape = _conv_shape(op, op_type)
        if keep_float(op_type, shape["kernel"], shape["depthwise"]):
            found.append(op.get_friendly_name())
    return found


def _constant_source(port) -> bool:
    """Does the value on this input come from a constant (through Convert or Reshape, as weights do)?"""
    node = port.get_source_output().get_node()
    while node.get_type_name() in ("Convert", "Reshape") and node.get_input_size():
        node = node.input(0).get_source_output().get_node()
    return node.get_type_name() == "Constant"


LOW = ("i8", "u8", "i4", "u4")
SKIPPED = ("Input", "Output", "Const", "Reorder", "Reshape", "Transpose", "Concatenation", "Split", "Gather")


def runtime_precisions(runtime_model) -> list[dict]:
    """Coverage rows from a compiled model's runtime graph: a node is int8 when the plugin's runtimePrecision
    says so; FLOPs of convolutions and matrix products from their input and output shapes."""
    rows: dict = {}
    for op in runtime_model.get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        if layer in SKIPPED:
            continue
        shapes = [op.input(i).get_partial_shape() for i in range(op.get_input_size())]
        dims = [[d.get_length() for d in s] if s.is_static else None for s in shapes]
        out = op.get_output_partial_shape(0)
        out_numel = int(np.prod([d.get_length() for d in out])) if out.is_static else 0
        facts = {"flops": 0, "kernel": None, "depthwise": False}
        if layer == "Convolution" and len(dims) > 1 and dims[0] and dims[1]:
            weights = dims[1] if len(dims[1]) == 4 else [dims[1][0] * dims[1][1], *dims[1][2:]]  # [G, O/G, ...]
            facts = conv_facts(out_numel, weights, dims[0][1])
        elif layer in ("FullyConnected", "MatMul") and dims and dims[0]:
            facts["flops"] = 2 * out_numel * dims[0][-1]
        op_type = {"FullyConnected": "FullyConnected", "MatMul": "MatMul"}.get(layer, layer)
        tally_precision(rows, op_type, info["runtimePrecision"].astype(str) in LOW, **facts)
    return list(rows.values())


__all__ = ["OpenVinoBackend", "OpenVinoSession", "cpu_capabilities", "cpu_has_bf16"]
