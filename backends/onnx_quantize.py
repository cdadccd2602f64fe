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

from .base import KeepFloat, conv_facts, tally_precision
from .onnx_export import INPUT_NAME, export_onnx

# ops that only move data: neither int8 nor float arithmetic, left out of the coverage
DATA_MOVEMENT = {"QuantizeLinear", "DequantizeLinear", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                 "Concat", "Split", "Slice", "Shape", "Gather", "Constant", "Identity", "Pad", "Cast", "Expand"}
# ops ONNX Runtime's QDQ fusion turns into integer kernels (QLinearConv, QLinearMatMul, QGemm, QLinearAdd,
# QLinearMul, QLinearAveragePool, QLinearGlobalAveragePool, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax);
# any other op fed by DequantizeLinear computes in float on the dequantized values
INT8_KERNELS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "AveragePool", "GlobalAveragePool", "Sigmoid", "LeakyRelu",
                "Softmax"}
BIASED = {"Conv", "Gemm"}  # input 2 is a bias, kept in int32 or float beside int8 weights
FLOAT_OUTPUT_OK = {"MatMul", "Gemm"}  # MatMulIntegerToFloat / QGemm may end in float; the others need a Q after


def quantize_qdq(model, example, path: Path, calibration: list[np.ndarray], symmetric: bool = False,
                 keep_float: KeepFloat | None = None) -> Path:
    """Export `model` to ONNX and write its static int8 QDQ quantization to `path` (intermediates removed).
    symmetric: int8 activations with zero point 0 (TensorRT's explicit quantization), else uint8 asymmetric
    (ONNX Runtime's CPU default). keep_float: the nodes it names are left out of the quantization (the
    quantizer's own nodes_to_exclude), so they keep float inputs and run float kernels."""
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
    excluded = float_node_names(prepared, keep_float) if keep_float else []
    quantize_static(str(prepared), str(path), reader, nodes_to_exclude=excluded, quant_format=QuantFormat.QDQ, per_channel=True,
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


class OnnxGraph:
    """An ONNX graph with inferred shapes, and who produces and consumes each value."""

    def __init__(self, path: Path):
        import onnx

        self.graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
        self.shapes = {v.name: _dims(v) for v in [*self.graph.value_info, *self.graph.input, *self.graph.output]}
        self.shapes.update({init.name: list(init.dims) for init in self.graph.initializer})
        self.constants = {init.name for init in self.graph.initializer}
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.consumers: dict[str, list] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def facts(self, node) -> tuple[str, dict]:
        """(op type, {flops, kernel, depthwise}) of an arithmetic node; a matrix product by constant weights (a
        linear layer) is "MatMul (constant weights)", apart from attention's products of two activations."""
        import onnx

        shapes, out = self.shapes, self.shapes.get(node.output[0])
        facts = {"flops": 0, "kernel": None, "depthwise": False}
        if node.op_type == "Conv" and out and shapes.get(node.input[1]):
            source = shapes.get(node.input[0])
            facts = conv_facts(int(np.prod(out)), shapes[node.input[1]], source[1] if source else None)
        elif node.op_type in ("MatMul", "Gemm") and out and shapes.get(node.input[0]):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            left = shapes[node.input[0]]
            facts["flops"] = 2 * int(np.prod(out)) * int(left[-2] if attrs.get("transA") else left[-1])
        op_type = node.op_type
        if node.op_type in ("MatMul", "Gemm"):
            weight = node.input[1]
            weighted = weight in self.constants or (self.producer.get(weight) is not None and
                                                    all(i in self.constants for i in self.producer[weight].input if i))
            op_type = f"{node.op_type} (constant weights)" if weighted else node.op_type
        return op_type, facts


def float_node_names(path: Path, keep_float: KeepFloat) -> list[str]:
    """The names of the float graph's arithmetic nodes that `keep_float` keeps in float."""
    graph = OnnxGraph(path)
    found = []
    for node in graph.graph.node:
        if node.op_type in DATA_MOVEMENT:
            continue
        op_type, facts = graph.facts(node)
        if keep_float(op_type, facts["kernel"], facts["depthwise"]):
            found.append(node.name)
    return found


def qdq_coverage(path: Path) -> list[dict]:
    """Which arithmetic nodes of a QDQ graph run as integer kernels (an op ONNX Runtime has one for, every input
    but a bias fed by DequantizeLinear and, but for matrix products, feeding a QuantizeLinear) and which
    compute in float,
    with each node's FLOPs from inferred shapes."""
    graph = OnnxGraph(path)
    rows: dict = {}
    for node in graph.graph.node:
        if node.op_type in DATA_MOVEMENT:
            continue
        # every input but a bias dequantized: weights too (a node left out of the quantization keeps float weights)
        quantizable = [name for i, name in enumerate(node.input) if name and not (i == 2 and node.op_type in BIASED)]
        dequantized = bool(quantizable) and all(graph.producer.get(name) is not None and
                                                graph.producer[name].op_type == "DequantizeLinear"
                                                for name in quantizable)
        requantized = node.op_type in FLOAT_OUTPUT_OK or any(
            c.op_type == "QuantizeLinear" for c in graph.consumers.get(node.output[0], []))
        low = node.op_type in INT8_KERNELS and dequantized and requantized
        op_type, facts = graph.facts(node)
        tally_precision(rows, op_type, low, **facts)
    return list(rows.values())
