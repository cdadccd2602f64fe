"""Core ML: export an ML program (.mlpackage) on any OS with coremltools; time it on macOS under
each compute-unit setting (devices mac:cpu, mac:gpu, mac:ane, mac:all).

iPhone numbers cannot be timed from this harness; see the README for the honest routes to one
(an Apple-silicon Mac's Neural Engine, or Xcode's Core ML performance report on a tethered phone)
and record them with `harness import --tool manual`.
"""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from .base import Backend, Session, module_version
from .onnx_export import INPUT_NAME, OUTPUT_NAME

# our device name -> coremltools.ComputeUnit member
COMPUTE_UNITS = {"mac:cpu": "CPU_ONLY", "mac:gpu": "CPU_AND_GPU", "mac:ane": "CPU_AND_NE", "mac:all": "ALL"}
PRECISIONS = {"fp16": "FLOAT16", "fp32": "FLOAT32"}


def convert_options(precision: str, shape: tuple[int, ...]) -> dict:
    """coremltools.convert arguments (names resolved against coremltools by the caller)."""
    if precision not in PRECISIONS:
        raise ValueError(f"Core ML precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return {"convert_to": "mlprogram", "compute_precision": PRECISIONS[precision],
            "minimum_deployment_target": "iOS16", "input_shape": tuple(shape)}


class CoreMlSession(Session):
    def __init__(self, path: Path, compute_unit: str):
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_unit))
        self.feed = None
        self.result = None

    def prepare(self, x: np.ndarray) -> None:
        self.feed = {INPUT_NAME: np.ascontiguousarray(x)}

    def infer(self) -> None:
        # MLModel.predict is the API: it wraps the numpy input into an MLMultiArray on every call,
        # a cost a native app also pays; recorded as part of the latency.
        self.result = self.model.predict(self.feed)

    def output(self) -> np.ndarray:
        return np.asarray(self.result[OUTPUT_NAME], dtype=np.float32)


class CoreMlBackend(Backend):
    name = "coreml"
    runtime_module = "coremltools"
    devices = tuple(COMPUTE_UNITS)
    artifact_name = "model.mlpackage"
    precisions = ("fp16", "fp32")

    def unavailable_reason(self, device: str) -> str | None:
        if platform.system() != "Darwin":
            return f"Core ML runs models only on macOS (this is {platform.system()}); export still works"
        if not module_version("coremltools"):
            return "coremltools is not installed (pip install -e .[coreml])"
        return None

    def versions(self) -> dict[str, str]:
        return {"coremltools": module_version("coremltools") or "?"}

    def export(self, model, example, out_dir: Path, precision: str = "fp16") -> Path:
        try:
            import coremltools as ct
        except ImportError as exc:
            raise RuntimeError("exporting .mlpackage needs coremltools (pip install -e .[coreml])") from exc
        import torch

        options = convert_options(precision, tuple(example.shape))
        traced = torch.jit.trace(model.eval(), example)
        package = ct.convert(
            traced,
            inputs=[ct.TensorType(name=INPUT_NAME, shape=options["input_shape"], dtype=np.float32)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            convert_to=options["convert_to"],
            compute_precision=getattr(ct.precision, options["compute_precision"]),
            minimum_deployment_target=getattr(ct.target, options["minimum_deployment_target"]),
        )
        path = out_dir / self.artifact_name
        package.save(str(path))
        return path

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return CoreMlSession(artifact, COMPUTE_UNITS[device])
