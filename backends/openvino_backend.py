"""OpenVINO: CPU here; Intel GPU and NPU where the plugin reports them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Session, module_version

OV_DEVICES = {"cpu": "CPU", "intel-gpu": "GPU", "npu": "NPU"}


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
            # fp32 target would silently be bf16 on one machine and f32 on the next.
            self.config[hints.inference_precision] = ov.Type.bf16 if precision == "bf16" else ov.Type.f32
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
        """OpenVINO's performance counters, from a separately compiled copy (counters cost time)."""
        import openvino.properties as props

        compiled = self.core.compile_model(self.core.read_model(str(self.path)), self.device,
                                           {**self.config, props.enable_profiling: True})
        request = compiled.create_infer_request()
        request.set_input_tensor(self.request.get_input_tensor(0))
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
    precisions = ("fp32", "bf16")  # bf16: the same IR, run in bf16 by the CPU plugin (AVX512-BF16 or AMX)
    compile_cache = True

    def precision_reason(self, device: str, precision: str) -> str | None:
        if precision == "bf16" and device != "cpu":
            return "bf16 is a CPU precision here"
        if precision == "bf16" and not cpu_has_bf16():
            return "this CPU has no bf16 instructions (AVX512-BF16 or AMX)"
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

    def export(self, model, example, out_dir: Path, precision: str = "fp32") -> Path:
        import openvino as ov

        # precision is a runtime hint (bf16 runs the fp32 IR); the IR itself is always fp32
        # A static input shape: dynamic-shape IR is slower and benchmark_app refuses it.
        converted = ov.convert_model(model.eval(), example_input=example, input=[tuple(example.shape)])
        path = out_dir / self.artifact_name
        ov.save_model(converted, str(path), compress_to_fp16=False)  # default would halve weights to fp16
        return path

    def load(self, model, artifact, device, threads, precision="fp32", compile_cache: Path | None = None) -> Session:
        return OpenVinoSession(artifact, OV_DEVICES[device], threads, precision, compile_cache)


def cpu_has_bf16() -> bool:
    """Does this CPU compute bf16 natively (what OpenVINO's CPU plugin needs for bf16 inference)?"""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))
