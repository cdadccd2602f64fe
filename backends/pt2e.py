"""PyTorch 2 export post-training quantization (PT2E), shared by the runtimes whose quantizer works on the
exported graph (LiteRT, ExecuTorch, Core ML through ExecuTorch): a runtime's own quantizer places observers,
the calibration photographs set activation ranges, and a mixed recipe leaves chosen ops in float.

A mixed recipe marks the ops to keep in float as annotated, with nothing to quantize, before the runtime's
quantizer annotates the graph: every one of its annotators skips a node that is already annotated, so the op
keeps float inputs and weights (the runtime then picks its float kernel), while its neighbours are quantized
as usual.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import KeepFloat


def aten_facts(node: torch.fx.Node) -> tuple[str, int | None, bool] | None:
    """(op type, kernel size, depthwise) of an exported graph's call, e.g. ("conv2d", 7, True); None for
    anything that is not an operator call."""
    if node.op != "call_function":
        return None
    op_type = getattr(node.target, "_opname", None) or getattr(node.target, "__name__", str(node.target))
    if op_type not in ("conv2d", "convolution") or len(node.args) < 2:
        return op_type, None, False
    weight = node.args[1].meta.get("val") if isinstance(node.args[1], torch.fx.Node) else None
    source = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
    if weight is None or weight.dim() != 4:
        return op_type, None, False
    in_channels = int(source.shape[1]) if source is not None and source.dim() == 4 else None
    return op_type, int(weight.shape[-1]), bool(weight.shape[1] == 1 and in_channels and in_channels > 1)


def float_nodes(graph_module: torch.fx.GraphModule, keep_float: KeepFloat) -> list[torch.fx.Node]:
    """The graph's operator calls that `keep_float` keeps in float."""
    return [node for node in graph_module.graph.nodes
            if (facts := aten_facts(node)) is not None and keep_float(*facts)]


def keeping_float(quantizer, keep_float: KeepFloat | None):
    """`quantizer`, made to leave the ops `keep_float` names in float (the quantizer itself when None)."""
    if keep_float is None:
        return quantizer
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, Quantizer

    class KeepFloatQuantizer(Quantizer):
        def transform_for_annotation(self, model):
            return quantizer.transform_for_annotation(model)

        def annotate(self, model):
            for node in float_nodes(model, keep_float):
                node.meta["quantization_annotation"] = QuantizationAnnotation(_annotated=True)
            return quantizer.annotate(model)

        def validate(self, model) -> None:
            quantizer.validate(model)

    return KeepFloatQuantizer()


def pt2e_quantized(model, example, quantizer, batches: list[np.ndarray], keep_float: KeepFloat | None = None,
                   fold_quantize: bool = True):
    """`model` through PT2E post-training quantization: observers placed by `quantizer` (but on the ops
    `keep_float` keeps in float), activation ranges observed on the calibration batches, then
    quantize/dequantize pairs in the graph."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = prepare_pt2e(torch.export.export(model.eval(), (example,)).module(), keeping_float(quantizer, keep_float))
    with torch.no_grad():
        for batch in batches:
            graph(torch.from_numpy(batch))
    return convert_pt2e(graph, fold_quantize=fold_quantize)
