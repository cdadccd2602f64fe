"""OpenVINO: CPU here; Intel GPU and NPU where the plugin reports them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, Session, module_version

OV_DEVICES = {"cpu": "CPU", "intel-gpu": "GPU", "npu": "NPU"}


class OpenVinoSession(Session):
    def __init__(self, path: Path, ov_device: str, threads: int):
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        core = ov.Core()
        config = {hints.performance_mode: hints.PerformanceMode.LATENCY, props.num_streams: 1}
        if ov_device == "CPU":
            config[props.inference_num_threads] = threads
            config[hints.inference_precision] = ov.Type.f32  # no silent bf16 on CPUs that have it
        self.compiled = core.compile_model(core.read_model(str(path)), ov_device, config)
        self.request = self.compiled.create_infer_request()

    def prepare(self, x: np.ndarray) -> None:
        import openvino as ov

        self.request.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))

    def run(self) -> None:
        self.request.infer()  # no arguments: nothing converted or copied per call

    def output(self) -> np.ndarray:
        return np.array(self.request.get_output_tensor(0).data, copy=True)


class OpenVinoBackend(Backend):
    name = "openvino"
    devices = tuple(OV_DEVICES)
    artifact_name = "model.xml"

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

        # A static input shape: dynamic-shape IR is slower and benchmark_app refuses it.
        converted = ov.convert_model(model.eval(), example_input=example, input=[tuple(example.shape)])
        path = out_dir / self.artifact_name
        ov.save_model(converted, str(path), compress_to_fp16=False)  # default would halve weights to fp16
        return path

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return OpenVinoSession(artifact, OV_DEVICES[device], threads)
