"""Exported artifacts: everything that shapes one (its cache key), and the artifact itself, from the
cache or freshly exported. The worker and `harness export` both come here."""
from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from backends import Backend
from backends.base import torch_version

from .. import baselines
from ..opclass import op_class
from ..protocol import LOW_PRECISIONS, CoverageRow, PrecisionRow
from ..spec import ModelSpec, example_input, fastvit_source_hash
from . import cache
from .images import ImageSet
from .recipe import keeps

if TYPE_CHECKING:
    import torch


def check_exportable(backend: Backend, precision: str) -> None:
    """ValueError, in one sentence, when `backend` cannot write a `precision` artifact on this host."""
    if not backend.artifact_name:
        raise ValueError(f"backend {backend.name!r} runs the torch module directly and has no artifact")
    if precision not in backend.precisions:
        raise ValueError(f"{backend.name} exports {', '.join(backend.precisions)}, not {precision}")
    if backend.export_needs_device and (reason := backend.unavailable_reason(backend.devices[0])):
        raise ValueError(f"{backend.name} builds its artifact on the device it runs on, and here: {reason}")


def _key_parts(backend: Backend, precision: str) -> dict:
    return {"backend": backend.name, "precision": precision, "versions": backend.versions(),
            "torch": torch_version(), "exporter": exporter_hash(backend)}


def exporter_hash(backend: Backend) -> str:
    """A hash of the backend's own module: an artifact its older export code wrote is not reused."""
    source = Path(inspect.getsourcefile(type(backend)))
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def model_artifact(spec: ModelSpec, backend: Backend, precision: str, model: torch.nn.Module,
                   example: torch.Tensor, cache_dir: Path, layer: str | None = None,
                   calibration: ImageSet | None = None, keep_float: str = "") -> tuple[Path, bool]:
    """(path, came from the cache) of `backend`'s artifact for the built `model` of `spec` (or for one `layer` of
    it, harness.measure.layers); `model` may be a built.ModelOnDemand, built on a cache miss only. calibration:
    the images an int8 artifact is calibrated on; its identity is part of the key, so another set makes another
    artifact. keep_float: a mixed int8 recipe (harness.measure.recipe), the op classes its quantizer leaves in
    float."""
    parts = {"spec": spec.as_dict(), "weights": spec.weights_id(), "fastvit": fastvit_source_hash(),
             **_key_parts(backend, precision)}
    if layer:
        parts["layer"] = layer
    if spec.is_baseline:
        parts["baseline_init"] = baselines.INIT
    if precision in LOW_PRECISIONS:
        if calibration is None:
            raise ValueError(f"a {precision} artifact needs calibration images")
        parts["calibration"] = calibration.identity
    if keep_float:
        if not backend.keeps_float:
            raise ValueError(f"{backend.name}'s int8 quantizer cannot keep ops in float")
        parts["keep_float"] = keep_float

    from .built import module_of  # a ModelOnDemand is built on a cache miss only, before the export's time starts

    def export(out: Path):
        module = module_of(model)
        batches = None
        if precision in LOW_PRECISIONS:
            batches = calibration.batches(spec.batch)
            if layer:  # what the layer receives inside the model on those images
                from .layers import layer_calibration  # torch work: only for a layer alone

                batches = layer_calibration(spec, layer, batches)
        if keep_float:
            return backend.export(module, example, out, precision, calibration=batches, keep_float=keeps(keep_float))
        return backend.export(module, example, out, precision, calibration=batches)

    return cache.get_or_build(Path(cache_dir) / backend.name, parts, backend.artifact_name, export,
                              prepare=lambda: module_of(model))


def spec_artifact(spec: ModelSpec, backend: Backend, precision: str, cache_dir: Path,
                  calibration: ImageSet | None = None, keep_float: str = "") -> tuple[Path, bool]:
    """`harness export`: build the model of `spec`, then as model_artifact."""
    check_exportable(backend, precision)
    return model_artifact(spec, backend, precision, spec.build(), example_input(spec), cache_dir,
                          calibration=calibration, keep_float=keep_float)


def gemm_artifact(backend: Backend, gemm: torch.nn.Module, example: torch.Tensor, size: int,
                  cache_dir: Path) -> Path:
    """The artifact of the peak-throughput GEMM (fp32) of `size`."""
    parts = {"gemm": size, **_key_parts(backend, "fp32")}
    path, _ = cache.get_or_build(Path(cache_dir) / backend.name, parts, backend.artifact_name,
                                 lambda out: backend.export(gemm, example, out, "fp32"))
    return path


def precision_coverage_of(backend: Backend, artifact: Path) -> list[PrecisionRow]:
    """Which ops of a low-precision `artifact` the runtime computes in int8, and which in float."""
    return [PrecisionRow(**row, op_class=op_class(row["op_type"], row["kernel"], row["depthwise"]))
            for row in backend.precision_coverage(artifact) or []]


def coverage_of(backend: Backend, artifact: Path) -> list[CoverageRow]:
    """What a delegating backend's partitioner took into `artifact` (empty for other backends)."""
    return [CoverageRow(**row, op_class=op_class(row["op_type"], row["kernel"], row["depthwise"]))
            for row in backend.coverage(artifact) or []]
