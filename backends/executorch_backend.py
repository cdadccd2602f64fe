"""ExecuTorch, PyTorch's on-device runtime: torch.export -> edge dialect -> subgraphs lowered to a
delegate (XNNPACK on CPUs, Core ML on Apple devices) -> one .pte program run by the ExecuTorch
runtime, with the ops no delegate took on its portable kernels.

Each export also writes `delegation.json` beside the .pte: which aten ops each partitioner took
(count and FLOPs, per node class) and the delegated convolution/linear layers in execution order,
which names the layer behind each operator of an ETDump profile (XNNPACK's operator names say
"Convolution IGEMM", never which convolution).
"""
from __future__ import annotations

import json
import platform
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Backend, KeepFloat, Session, calibration_batches, module_version, tally_precision

SIDECAR = "delegation.json"
INSTALL = "executorch is not installed (pip install -e .[executorch])"
# ETDump events that wrap others (their time is their children's): not operators
WRAPPER_EVENTS = ("DELEGATE_CALL", "OPERATOR_CALL", "Method::")


def _importable() -> bool:
    """Installed? Found without importing it: importing executorch loads torch.export and logs."""
    from importlib.util import find_spec

    try:
        return all(find_spec(name) is not None for name in ("executorch.exir",
                                                            "executorch.extension.pybindings.portable_lib"))
    except ImportError:  # a parent package is missing
        return False


def _op_name(node) -> str:
    return getattr(node.target, "__name__", str(node.target))


def describe_node(node) -> dict | None:
    """{op_type, kernel, depthwise, flops} of one aten call in an edge graph (None for bookkeeping
    nodes). FLOPs count a multiply-add as 2, as torch's FlopCounterMode does."""
    name = _op_name(node)
    if name in ("getitem", "executorch_call_delegate") or "val" not in node.meta:
        return None
    import torch

    out = node.meta["val"]
    out_numel = out.numel() if isinstance(out, torch.Tensor) else 0
    row = {"op_type": name, "kernel": None, "depthwise": False, "flops": 0}
    if name.startswith(("aten.convolution", "aten.conv2d")):
        weight = node.args[1].meta["val"]
        groups_at = 8 if name.startswith("aten.convolution") else 6  # conv2d(x, w, b, stride, pad, dilation, groups)
        groups = node.args[groups_at] if len(node.args) > groups_at else 1
        row.update(kernel=int(weight.shape[-1]), depthwise=bool(groups > 1 and weight.shape[1] == 1),
                   flops=2 * out_numel * int(weight.shape[1] * weight.shape[2] * weight.shape[3]))
    elif "scaled_dot_product_attention" in name:  # Q K^T and attention x V, (B, heads, N, d) each
        query, key = node.args[0].meta["val"], node.args[1].meta["val"]
        row["flops"] = 4 * query.numel() * int(key.shape[-2])
    elif any(op in name for op in ("linear", "addmm", ".mm.", "bmm", "matmul")):
        reduced = node.args[0].meta["val"].shape[-1] if "addmm" not in name else node.args[1].meta["val"].shape[-1]
        row["flops"] = 2 * out_numel * int(reduced)
    return row


def _follows_convolution(node) -> bool:
    """Is this BatchNorm foldable into the convolution before it (that convolution's only consumer)?"""
    source = node.args[0]
    return (getattr(source, "op", None) == "call_function" and "conv" in _op_name(source)
            and len(source.users) == 1)


QDQ = ("quantized_decomposed.", "torchao.quantize_affine", "torchao.dequantize_affine")


def _is_dequantize(node) -> bool:
    return getattr(node, "op", None) == "call_function" and "dequantize" in _op_name(node)


def _computes_int8(node) -> bool:
    """Are all of this node's tensor inputs dequantized int8 values (a dq -> op -> q group XNNPACK runs as one
    quantized operator)?"""
    name = _op_name(node)
    # a convolution or linear layer: its input and weight (a bias stays int32 or float)
    if name.startswith(("aten.convolution", "aten.conv2d", "aten.linear")):
        inputs = list(node.args[:2])
    else:  # computed inputs (parameters and constants are placeholders)
        inputs = [a for a in node.args if getattr(a, "op", None) == "call_function"]
    return bool(inputs) and all(_is_dequantize(a) for a in inputs)


def delegation(edge, partitioner: str) -> dict:
    """The sidecar's content for a lowered edge program (see the module docstring); for a quantized program
    also which arithmetic nodes compute on int8 (`precision`, rows as Backend.precision_coverage)."""
    from executorch.exir.lowered_backend_module import LoweredBackendModule

    graph_module = edge.exported_program().graph_module
    rows: dict[tuple, dict] = {}
    precision: dict[tuple, dict] = {}

    def count(node, delegated: bool) -> dict | None:
        described = describe_node(node)
        if described is None:
            return None
        if not described["op_type"].startswith(QDQ):
            tally_precision(precision, described["op_type"], _computes_int8(node), described["flops"],
                            described["kernel"], described["depthwise"])
        key = (described["op_type"], described["kernel"], described["depthwise"])
        row = rows.setdefault(key, {"op_type": key[0], "kernel": key[1], "depthwise": key[2], "delegated_nodes": 0,
                                    "portable_nodes": 0, "delegated_flops": 0, "portable_flops": 0})
        side = "delegated" if delegated else "portable"
        row[f"{side}_nodes"] += 1
        row[f"{side}_flops"] += described["flops"]
        return described

    layers = []
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        if _op_name(node) == "executorch_call_delegate":
            lowered = getattr(graph_module, node.args[0].target)
            if not isinstance(lowered, LoweredBackendModule):
                continue
            for inner in lowered.original_module.graph.nodes:
                if inner.op == "call_function" and (described := count(inner, delegated=True)):
                    if described["kernel"] is not None or "linear" in described["op_type"]:
                        pointwise = described["kernel"] in (None, 1) and not described["depthwise"]
                        layers.append({"kind": "fc" if pointwise else "conv", "kernel": described["kernel"],
                                       "depthwise": described["depthwise"]})
                    elif "batch_norm" in described["op_type"] and not _follows_convolution(inner):
                        # XNNPACK runs a BatchNorm it cannot fold into a convolution as a 1x1 depthwise one
                        layers.append({"kind": "conv", "kernel": None, "depthwise": False, "op_class": "norm"})
        else:
            count(node, delegated=False)
    return {"partitioner": partitioner, "coverage": list(rows.values()), "layers": layers,
            "precision": list(precision.values())}


def profile_rows(events, layers: list[dict]) -> list[dict]:
    """ETDump events of one method execution as profile rows. XNNPACK runs k x k convolutions as
    'Convolution' operators and 1x1 convolutions and linear layers as 'Fully Connected' ones, each
    in graph order, so the n-th of each kind is the n-th such delegated layer; when the counts do
    not match, kernels stay unknown rather than guessed."""
    ops = [e for e in events if e.perf_data is not None and not e.name.startswith(WRAPPER_EVENTS)]
    kinds = {"conv": [layer for layer in layers if layer["kind"] == "conv"],
             "fc": [layer for layer in layers if layer["kind"] == "fc"]}
    kind_of = {e.name: ("conv" if e.name.startswith("Convolution") else
                        "fc" if e.name.startswith("Fully Connected") else None) for e in ops}
    matched = all(sum(kind_of[e.name] == kind for e in ops) == len(kinds[kind]) for kind in kinds)
    seen = {"conv": 0, "fc": 0}
    rows = []
    for event in ops:
        row = {"op_name": event.name, "op_type": event.name.rsplit(" #", 1)[0], "kernel": None, "depthwise": False,
               "calls": 1, "total_ms": float(event.perf_data.avg)}
        kind = kind_of[event.name]
        if matched and kind:
            layer = kinds[kind][seen[kind]]
            seen[kind] += 1
            if layer["kernel"] is not None:  # a linear layer stays a linear layer
                row.update(kernel=layer["kernel"], depthwise=layer["depthwise"])
            if "op_class" in layer:  # known better than the operator's name says (a BatchNorm)
                row["op_class"] = layer["op_class"]
        rows.append(row)
    return rows


@dataclass
class EtdumpRun:
    """What an ETDump says about the runs it traced."""
    samples_ms: list[float]  # each traced execution of the method, as the runtime timed it
    rows: list[dict]  # operator profile rows, ms per inference (averaged over the runs)


ETDUMP_IDENTIFIER = b"ED00"  # file_identifier of executorch/devtools/etdump/etdump_schema_flatcc.fbs


def _has_identifier(path: Path, identifier: bytes) -> bool:
    """True when `path` is a flatbuffer with this file identifier (after the root offset, and after
    the size prefix an ETDump carries)."""
    with open(path, "rb") as f:
        head = f.read(12)
    return identifier in (head[4:8], head[8:12])


def parse_etdump(etdump: Path, etrecord: Path | None = None, layers: list[dict] | None = None) -> EtdumpRun:
    """An ETDump written by an ExecuTorch runtime (ours, or a phone's benchmark app), read with
    ExecuTorch's own Inspector. `layers`: the delegation.json of the exported program, which names
    the layer behind each XNNPACK operator; without it kernels stay unknown."""
    from backends.benchmark_model import ToolOutputError

    # Checked before ExecuTorch is imported: its reader shells out to flatc, which prints a page of usage
    # text for a file of another kind before the exception comes back.
    try:
        is_etdump = _has_identifier(etdump, ETDUMP_IDENTIFIER)
    except OSError as exc:
        raise ToolOutputError(f"cannot read {etdump}: {exc.strerror}") from exc
    if not is_etdump:
        raise ToolOutputError(f"{etdump} is not an ETDump (no '{ETDUMP_IDENTIFIER.decode()}' flatbuffer identifier "
                              "where an ExecuTorch runtime writes one)")
    if etrecord is not None and not zipfile.is_zipfile(etrecord):
        raise ToolOutputError(f"{etrecord} is not an ETRecord (ExecuTorch writes those as zip archives)")
    if not _importable():
        raise ToolOutputError(f"reading an ETDump needs {INSTALL}")
    from executorch.devtools import Inspector

    try:
        inspector = Inspector(etdump_path=str(etdump), etrecord=str(etrecord) if etrecord else None)
    except Exception as exc:  # the Inspector raises whatever its flatbuffer reader does
        raise ToolOutputError(f"{etdump} is not an ETDump this executorch can read ({type(exc).__name__}: "
                              f"{exc})") from exc
    blocks = [b for b in inspector.event_blocks if b.name == "Execute"]
    execute = [e for b in blocks for e in b.events if e.name == "Method::execute" and e.perf_data is not None]
    if not execute:
        raise ToolOutputError(f"{etdump} holds no traced execution (no Method::execute event): was the method run "
                              "with ETDump enabled?")
    return EtdumpRun([float(ms) for ms in execute[0].perf_data.raw], profile_rows(blocks[0].events, layers or []))


class ExecuTorchSession(Session):
    def __init__(self, path: Path, threads: int):
        from executorch.extension.pybindings import portable_lib

        self.portable_lib, self.path = portable_lib, path
        # The host threadpool starts with one thread whatever the machine has; --threads sets it.
        portable_lib._unsafe_reset_threadpool(threads)
        # maps the program; the method is initialised (XNNPACK packs its weights) on the first call, so that
        # work lands in the first inference, not in the load time
        self.module = portable_lib._load_for_executorch(str(path))
        sidecar = path.parent / SIDECAR
        self.layers = json.loads(sidecar.read_text())["layers"] if sidecar.exists() else []
        self.inputs = self.outputs = None

    def prepare(self, x: np.ndarray) -> None:
        import torch  # loaded already: the ExecuTorch runtime imports it

        self.inputs = (torch.from_numpy(np.ascontiguousarray(x)),)

    def infer(self) -> None:
        self.outputs = self.module.run_method("forward", self.inputs)

    def output(self) -> np.ndarray:
        return self.outputs[0].float().numpy()

    def profile(self, iterations: int) -> list[dict]:
        """Per-operator times from an ETDump of `iterations` runs (a second, traced copy of the program)."""
        from executorch.devtools import Inspector

        traced = self.portable_lib._load_for_executorch(str(self.path), enable_etdump=True, debug_buffer_size=0)
        for _ in range(iterations):
            traced.run_method("forward", self.inputs)
        with tempfile.TemporaryDirectory(prefix="harness-etdump-") as tmp:
            etdump = Path(tmp) / "run.etdump"
            traced.write_etdump_result_to_file(str(etdump))
            blocks = [b for b in Inspector(etdump_path=str(etdump)).event_blocks if b.name == "Execute"]
        return profile_rows(blocks[0].events, self.layers) if blocks else []


class ExecuTorchBackend(Backend):
    """ExecuTorch with the XNNPACK delegate on this host's CPU."""
    name = "executorch"
    runtime_module = "executorch.extension.pybindings.portable_lib"
    devices = ("cpu",)
    artifact_name = "model.pte"
    partitioner = "xnnpack"
    precisions = ("fp32", "int8")
    keeps_float = True  # ops marked annotated before the PT2E quantizer annotates (backends.pt2e)
    timing = "host clock around one Module.run_method('forward') call"

    def unavailable_reason(self, device: str) -> str | None:
        return None if _importable() else INSTALL

    def versions(self) -> dict[str, str]:
        return {"executorch": module_version("executorch") or "none"}

    def make_partitioner(self, precision: str = "fp32"):
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        return XnnpackPartitioner()

    def quantizer(self):
        """The delegate's own PT2E quantizer: static int8, per-channel symmetric weights."""
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                             get_symmetric_quantization_config)

        return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None,
               keep_float: KeepFloat | None = None) -> Path:
        if not _importable():
            raise RuntimeError(INSTALL)
        import logging

        import torch
        from executorch.exir import to_edge_transform_and_lower

        for noisy in ("executorch", "coremltools"):  # partitioners log every node they skip at INFO
            logging.getLogger(noisy).setLevel(logging.WARNING)
        if precision == "int8":
            from .pt2e import pt2e_quantized  # torch's quantizer: loaded only where a model is quantized

            model = pt2e_quantized(model, example, self.quantizer(), calibration_batches(calibration, self.name),
                                   keep_float)
        program = torch.export.export(model.eval() if precision != "int8" else model, (example,))
        edge = to_edge_transform_and_lower(program, partitioner=[self.make_partitioner(precision)])
        (out_dir / SIDECAR).write_text(json.dumps(delegation(edge, self.partitioner)))
        path = out_dir / self.artifact_name
        path.write_bytes(edge.to_executorch().buffer)
        return path

    def coverage(self, artifact: Path) -> list[dict] | None:
        sidecar = Path(artifact).parent / SIDECAR
        if not sidecar.exists():
            return None
        found = json.loads(sidecar.read_text())
        return [{**row, "partitioner": found["partitioner"]} for row in found["coverage"]]

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        sidecar = Path(artifact).parent / SIDECAR
        return json.loads(sidecar.read_text()).get("precision") if sidecar.exists() else None

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return ExecuTorchSession(Path(artifact), threads)


class ExecuTorchCoreMlBackend(ExecuTorchBackend):
    """ExecuTorch with the Core ML delegate (all compute units): exported anywhere, run on macOS."""
    name = "executorch-coreml"
    devices = ("mac:all",)
    partitioner = "coreml"
    keeps_float = False  # coremltools' quantizer is not checked to skip pre-annotated ops (no macOS here)

    def unavailable_reason(self, device: str) -> str | None:
        if not _importable():
            return INSTALL
        if platform.system() != "Darwin":
            return f"ExecuTorch's Core ML delegate runs only on macOS (this is {platform.system()}); export still works"
        from executorch.extension.pybindings import portable_lib

        if "CoreMLBackend" not in portable_lib._get_registered_backend_names():
            return "this executorch build has no Core ML backend registered"
        return None

    def make_partitioner(self, precision: str = "fp32"):
        import coremltools as ct
        from executorch.backends.apple.coreml.compiler import CoreMLBackend
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner

        if precision != "int8":
            return CoreMLPartitioner()
        # activation quantize/dequantize ops exist from iOS 17's ML program opset on
        return CoreMLPartitioner(compile_specs=CoreMLBackend.generate_compile_specs(
            minimum_deployment_target=ct.target.iOS17))

    def quantizer(self):
        """coremltools' PT2E quantizer: int8 weights and activations (W8A8), per-channel symmetric weights."""
        from coremltools.optimize.torch.quantization.quantization_config import (LinearQuantizerConfig,
                                                                                 QuantizationScheme)
        import torch
        from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer

        config = LinearQuantizerConfig.from_dict({"global_config": {
            "quantization_scheme": QuantizationScheme.symmetric, "activation_dtype": torch.quint8,
            "weight_dtype": torch.qint8, "weight_per_channel": True}})
        return CoreMLQuantizer(config)
