"""torch -> ONNX, shared by every backend that consumes ONNX (ONNX Runtime, TensorRT)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Static-shape ONNX export through torch.export (the maintained exporter)."""
    import torch

    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates each pass on stdout
        torch.onnx.export(model.eval(), (example,), str(path), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=True,
                          external_data=False, verbose=False)
    return path
