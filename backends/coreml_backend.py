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

from .base import Backend, Session, calibration_batches, conv_facts, module_version, tally_precision
from .onnx_export import INPUT_NAME, OUTPUT_NAME

# our device name -> coremltools.ComputeUnit member
COMPUTE_UNITS = {"mac:cpu": "CPU_ONLY", "mac:gpu": "CPU_AND_GPU", "mac:ane": "CPU_AND_NE", "mac:all": "ALL"}
PRECISIONS = {"fp16": "FLOAT16", "fp32": "FLOAT32", "int8": "FLOAT16"}  # int8: W8A8, the rest in fp16


def convert_options(precision: str, shape: tuple[int, ...]) -> dict:
    """coremltools.convert arguments (names resolved against coremltools by the caller)."""
    if precision not in PRECISIONS:
        raise ValueError(f"Core ML precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    # activation quantization (quantize/dequantize ops on activations) needs iOS 17's ML program opset
    return {"convert_to": "mlprogram", "compute_precision": PRECISIONS[precision],
            "minimum_deployment_target": "iOS17" if precision == "int8" else "iOS16", "input_shape": tuple(shape)}


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
    precisions = ("fp16", "fp32", "int8")  # int8: coremltools' PT2E quantizer (W8A8), converted on any OS

    def unavailable_reason(self, device: str) -> str | None:
        if platform.system() != "Darwin":
            return f"Core ML runs models only on macOS (this is {platform.system()}); export still works"
        if not module_version("coremltools"):
            return "coremltools is not installed (pip install -e .[coreml])"
        return None

    def versions(self) -> dict[str, str]:
        return {"coremltools": module_version("coremltools") or "?"}

    def export(self, model, example, out_dir: Path, precision: str = "fp16", calibration=None) -> Path:
        try:
            import coremltools as ct
        except ImportError as exc:
            raise RuntimeError("exporting .mlpackage needs coremltools (pip install -e .[coreml])") from exc
        import torch

        options = convert_options(precision, tuple(example.shape))
        if precision == "int8":  # quantized in torch, so calibration runs here rather than in a macOS-only predict
            from .executorch_backend import ExecuTorchCoreMlBackend
            from .pt2e import pt2e_quantized

            quantized = pt2e_quantized(model, example, ExecuTorchCoreMlBackend().quantizer(),
                                       calibration_batches(calibration, self.name))
            source = torch.export.export(quantized, (example,)).run_decompositions({})
        else:
            source = torch.jit.trace(model.eval(), example)
        package = ct.convert(
            source,
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

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        return mlprogram_precisions(Path(artifact))


SKIPPED = {"const", "quantize", "dequantize", "constexpr_affine_dequantize", "constexpr_blockwise_shift_scale",
           "cast", "reshape", "transpose", "concat", "split", "slice_by_index", "squeeze", "expand_dims", "pad"}


def mlprogram_precisions(package: Path) -> list[dict]:
    """Coverage rows from the saved ML program itself (read as its protobuf, so on any OS): an op computes on
    int8 when its input (and a convolution's or linear layer's weight) comes from a dequantize op, which Core ML
    fuses into an int8 kernel where the compute unit has one (the Neural Engine on A17 Pro / M4 and later)."""
    import coremltools as ct

    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
    producer, dims = {}, {}
    for op in block.operations:
        for out in op.outputs:
            producer[out.name] = op.type
            dims[out.name] = [d.constant.size for d in out.type.tensorType.dimensions]
    rows: dict = {}
    for op in block.operations:
        if op.type in SKIPPED:
            continue
        inputs = {name: [a.name for a in binding.arguments] for name, binding in op.inputs.items()}
        data = inputs.get("x", [])[:1] + (inputs.get("weight", [])[:1] if op.type in ("conv", "linear") else [])
        low = bool(data) and all("dequantize" in producer.get(name, "") for name in data)
        out = dims.get(op.outputs[0].name, []) if op.outputs else []
        facts = {"flops": 0, "kernel": None, "depthwise": False}
        if op.type == "conv" and inputs.get("weight") and inputs.get("x"):
            source = dims.get(inputs["x"][0]) or [None, None]
            facts = conv_facts(int(np.prod(out)), dims[inputs["weight"][0]], source[1])
        elif op.type in ("linear", "matmul") and inputs.get("x"):
            facts["flops"] = 2 * int(np.prod(out)) * int(dims[inputs["x"][0]][-1])
        tally_precision(rows, op.type, low, **facts)
    return list(rows.values())
