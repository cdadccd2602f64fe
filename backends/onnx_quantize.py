"""Post-training static int8 quantization of our ONNX export with ONNX Runtime's own quantizer (QDQ
format: QuantizeLinear/DequantizeLinear pairs around each quantized op, per-channel int8 weights,
activation ranges from calibration images), and what the quantized graph computes in int8.

ONNX Runtime fuses each DequantizeLinear -> op -> QuantizeLinear group into an integer kernel
(QLinearConv, QLinearMatMul, ...); TensorRT reads the same QDQ graph as explicit quantization, for
which its activations must be symmetric (zero point 0).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import conv_facts, tally_precision
from .onnx_export import INPUT_NAME, export_onnx

# ops that only move data: neither int8 nor float arithmetic, left out of the coverage
DATA_MOVEMENT = {"QuantizeLinear", "DequantizeLinear", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                 "Concat", "Split", "Slice", "Shape", "Gather", "Constant", "Identity", "Pad", "Cast", "Expand"}
# ops ONNX Runtime's QDQ fusion turns into integer kernels (QLinearConv, QLinearMatMul, QGemm, QLinearAdd,
# QLinearMul, QLinearAveragePool, QLinearGlobalAveragePool, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax);
# any other op fed by DequantizeLinear computes in float on the dequantized values
INT8_KERNELS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "AveragePool", "GlobalAveragePool", "Sigmoid", "LeakyRelu",
                "Softmax"}
FLOAT_OUTPUT_OK = {"MatMul", "Gemm"}  # MatMulIntegerToFloat / QGemm may end in float; the others need a Q after


def quantize_qdq(model, example, path: Path, calibration: list[np.ndarray], symmetric: bool = False) -> Path:
    """Export `model` to ONNX and write its static int8 QDQ quantization to `path` (intermediates removed).
    symmetric: int8 activations with zero point 0 (TensorRT's explicit quantization), else uint8 asymmetric
    (ONNX Runtime's CPU default)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, batches: list[np.ndarray]):
            self.batches = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}

    floating, prepared = path.with_name("float.onnx"), path.with_name("prepared.onnx")
    export_onnx(model, example, floating)
    # shape inference and graph clean-up, as ONNX Runtime's quantization guide asks before quantize_static
    quant_pre_process(str(floating), str(prepared), skip_symbolic_shape=True)
    reader = Reader(calibration)
    quantize_static(str(prepared), str(path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True})
    floating.unlink()
    prepared.unlink()
    for leftover in path.parent.glob("*.onnx.data"):  # the calibration's augmented model, where it left one
        leftover.unlink()
    return path


def _dims(value_info) -> list[int] | None:
    shape = value_info.type.tensor_type.shape
    dims = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
    return None if None in dims else dims


def qdq_coverage(path: Path) -> list[dict]:
    """Which arithmetic nodes of a QDQ graph run as integer kernels (an op ONNX Runtime has one for, fed only
    by DequantizeLinear and, but for matrix products, feeding a QuantizeLinear) and which compute in float,
    with each node's FLOPs from inferred shapes."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {v.name: _dims(v) for v in [*graph.value_info, *graph.input, *graph.output]}
    shapes.update({init.name: list(init.dims) for init in graph.initializer})
    constants = {init.name for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rows: dict = {}
    for node in graph.node:
        if node.op_type in DATA_MOVEMENT:
            continue
        data = [name for name in node.input if name and name not in constants]
        dequantized = bool(data) and all(producer.get(name) is not None and producer[name].op_type == "DequantizeLinear"
                                         for name in data)
        requantized = node.op_type in FLOAT_OUTPUT_OK or any(
            c.op_type == "QuantizeLinear" for c in consumers.get(node.output[0], []))
        low = node.op_type in INT8_KERNELS and dequantized and requantized
        out = shapes.get(node.output[0])
        facts = {"flops": 0, "kernel": None, "depthwise": False}
        if node.op_type == "Conv" and out and shapes.get(node.input[1]):
            source = shapes.get(node.input[0])
            facts = conv_facts(int(np.prod(out)), shapes[node.input[1]], source[1] if source else None)
        elif node.op_type in ("MatMul", "Gemm") and out and shapes.get(node.input[0]):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            left = shapes[node.input[0]]
            facts["flops"] = 2 * int(np.prod(out)) * int(left[-2] if attrs.get("transA") else left[-1])
            facts["depthwise"] = False
        op_type = node.op_type
        if node.op_type in ("MatMul", "Gemm"):  # a linear layer multiplies by constant weights; attention does not
            weight = node.input[1]
            weighted = weight in constants or (producer.get(weight) is not None and
                                               all(i in constants for i in producer[weight].input if i))
            op_type = f"{node.op_type} (constant weights)" if weighted else node.op_type
        tally_precision(rows, op_type, low, **facts)
    return list(rows.values())
