"""One colour per target and per op class, the same in every chart: the dashboard's plotly figures and the PNGs."""
from __future__ import annotations

import zlib

from ..opclass import CLASSES

# a hue per runtime (matplotlib's tab10, which the PNGs used before), in the order runtimes joined the harness
BACKEND_COLOURS = {"torch": "#1f77b4", "onnxruntime": "#ff7f0e", "openvino": "#2ca02c", "litert": "#d62728",
                   "executorch": "#9467bd", "torch-compile": "#8c564b", "coreml": "#e377c2", "tensorrt": "#7f7f7f",
                   "aihub-tflite": "#bcbd22", "aihub-onnx": "#17becf", "aihub-qnn": "#393b79"}
OTHER = ("#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1")
# matplotlib's tab20: one colour per op class of the vocabulary
OP_CLASS_COLOURS = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
                    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
                    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")


def _shade(colour: str, factor: float) -> str:
    """Darker (factor < 1) or lighter (> 1) of the same hue."""
    channels = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    if factor < 1:
        channels = [round(c * factor) for c in channels]
    else:
        channels = [round(c + (255 - c) * (factor - 1)) for c in channels]
    return "#" + "".join(f"{min(max(c, 0), 255):02x}" for c in channels)


def target_colour(target: str) -> str:
    """The colour of a target ('onnxruntime/cpu', 'coreml/iphone-12-pro int8'): its runtime's hue, on the CPU as
    it is and on any other device a shade of it chosen by the device's name, so it never changes between charts."""
    name = target.split(" ", 1)[0]
    backend, _, device = name.partition("/")
    base = BACKEND_COLOURS.get(backend) or OTHER[zlib.crc32(backend.encode()) % len(OTHER)]
    if device in ("", "cpu"):
        return base
    return _shade(base, (0.6, 1.35, 0.8)[zlib.crc32(device.encode()) % 3])


def op_class_colour(op_class: str) -> str:
    index = CLASSES.index(op_class) if op_class in CLASSES else zlib.crc32(op_class.encode())
    return OP_CLASS_COLOURS[index % len(OP_CLASS_COLOURS)]
