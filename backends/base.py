"""The contract every runtime module implements; nothing here imports a runtime.

A backend turns a torch module into its artifact (`export`), and an artifact into a `Session`
that runs one inference per `run()` call on inputs placed beforehand by `prepare()`.
Runtimes are imported inside methods, so a missing runtime costs nothing until it is used.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # a backend names torch types; the runtimes and torch load inside its methods
    import torch


# A mixed int8 recipe's ops to leave in float: called with each op's (type, kernel size, depthwise) as the
# runtime's own graph names it (ONNX "Conv", OpenVINO "GroupConvolution", an exported graph's "conv2d"), True to
# keep that op in float
KeepFloat = Callable[[str, "int | None", bool], bool]


class Session(ABC):
    """One loaded model on one device, ready to be timed."""

    @abstractmethod
    def prepare(self, x: np.ndarray) -> None:
        """Copy the input into the runtime's own memory, outside the timed region."""

    @abstractmethod
    def infer(self) -> int | None:
        """One inference on the prepared input; the only thing inside the timed region.

        Returns None to be timed by the host clock around the call, or the nanoseconds the device
        itself measured (CUDA events around a GPU execution, for example).
        """

    @abstractmethod
    def output(self) -> np.ndarray:
        """The last run's output as float32 NCHW-order numpy (converted after timing)."""

    def facts(self) -> dict:
        """What the runtime reports about how it runs this model (e.g. the precision it chose),
        recorded in the run's environment."""
        return {}

    def device_memory_mb(self) -> float | None:
        """The accelerator memory this session took at its peak (GPUs); None on a CPU."""
        return None

    def compilation(self) -> dict | None:
        """How a compiling runtime (torch.compile) captured the model: {mode, compile_ms, graphs, graph_breaks,
        break_reasons, recompiles (since loading)}. None for runtimes that load a finished artifact."""
        return None

    def profile(self, iterations: int) -> list[dict] | None:
        """Per-op time of one inference, averaged over `iterations` profiled runs made after timing:
        rows {op_name, op_type, kernel, depthwise, calls, total_ms}. None when the runtime has no profiler."""
        return None


@dataclass
class RemoteTiming:
    """What a device's own benchmark tool reported for an artifact (a phone's benchmark_model)."""
    tool_result: Any  # the tool's parsed output, e.g. backends.benchmark_model.BenchmarkModelResult
    device_facts: dict = field(default_factory=dict)  # model, SoC, OS, thermal state before and after
    output_tail: str = ""  # the end of the tool's output, kept with the run


class Backend(ABC):
    name: str
    devices: tuple[str, ...]  # device names; "android" stands for every "android:<serial>"
    artifact_name: str | None  # file (or bundle directory) name in the cache entry; None: nothing exported
    precisions: tuple[str, ...] = ("fp32",)  # weight/compute precisions export() can produce
    timing: str = "host clock around one synchronous inference call"  # stored with every run
    export_needs_device: bool = False  # True when the artifact is built on the device it runs on
    partitioner: str | None = None  # the delegate that takes subgraphs (ExecuTorch: xnnpack, coreml)
    compile_cache: bool = False  # load() takes compile_cache=DIR: a runtime cache of compiled models
    runtime_module: str | None = None  # what load() imports: imported before a model's memory is measured
    cache_filled_by_load: bool = False  # with compile_cache: every load compiles into that cache (torch.compile), so
    # the cold load fills what the warm one reuses (OpenVINO's cache is filled by a load of its own first)
    load_needs_example: bool = False  # load() takes example=ARRAY: it compiles for that input's shape and layout
    option_names: tuple[str, ...] = ()  # target options load() takes (torch-compile: mode)
    farm: bool = False  # a hosted device farm (AI Hub): jobs are submitted and waited on, remembered across runs
    remote_takes_example: bool = False  # time_remote() takes example=ARRAY (the device runs it: parity) and precision=
    keeps_float: bool = False  # an int8 export() takes keep_float=: its quantizer can leave chosen ops in float

    @abstractmethod
    def unavailable_reason(self, device: str) -> str | None:
        """None when (this backend, device) can run here, else a one-line reason."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the runtime packages, recorded with every run and in the cache key."""

    def export(self, model: torch.nn.Module, example: torch.Tensor, out_dir: Path, precision: str = "fp32",
               calibration: list[np.ndarray] | None = None) -> Path | None:
        """Write the artifact for `model` at `example`'s static shape into out_dir; return its path.
        calibration: for int8, input batches shaped like `example` (real photographs, harness.measure.images)
        that the runtime's post-training quantizer observes activations on. Backends with `keeps_float`
        also take keep_float: KeepFloat, the ops an int8 export leaves in float (a mixed recipe)."""
        return None

    def precision_reason(self, device: str, precision: str) -> str | None:
        """None when this device can run `precision` (one of `precisions`), else a one-line reason."""
        return None

    def precision_coverage(self, artifact: Path) -> list[dict] | None:
        """Which nodes of a low-precision (int8) artifact the runtime computes in int8 and which stay in
        float, read from the runtime's own view of it: rows {op_type, kernel, depthwise, low_nodes,
        float_nodes, low_flops, float_flops} (see tally_precision). None where the runtime gives no view."""
        return None

    def coverage(self, artifact: Path) -> list[dict] | None:
        """Which ops a delegate took into the artifact and which stayed on fallback kernels: rows
        {partitioner, op_type, kernel, depthwise, delegated_nodes, portable_nodes, delegated_flops,
        portable_flops}. None for runtimes that run the whole graph themselves."""
        return None

    def target_options(self, device: str, asked: dict[str, str]) -> str:
        """The target options ("k=v,...") for what a sweep asked of this backend's `option_names`."""
        return ""

    def is_remote(self, device: str) -> bool:
        """True when the target is driven through a vendor tool (a phone over adb) instead of a Session."""
        return False

    def time_remote(self, artifact: Path, device: str, threads: int, policy, **options: str) -> RemoteTiming:
        """Time the artifact with the device's own tool, on the device."""
        raise NotImplementedError(f"{self.name} has no remote targets")

    @abstractmethod
    def load(self, model: torch.nn.Module, artifact: Path | None, device: str, threads: int,
             precision: str = "fp32") -> Session:
        """A session for the artifact (or the module itself, for eager backends)."""


def module_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def torch_version() -> str | None:
    """torch.__version__ (local build tag included, e.g. 2.14.1+cu130), read from torch/version.py without importing
    torch: the processes that only plan and store never load it. None where torch is not installed."""
    import importlib.util

    found = importlib.util.find_spec("torch")
    if found is None or not found.submodule_search_locations:
        return None
    spec = importlib.util.spec_from_file_location("_torch_version", Path(found.submodule_search_locations[0]) / "version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.__version__


def gpu_driver_present() -> bool:
    """An NVIDIA (or ROCm) kernel driver is loaded: only then can torch see a GPU, and asking it means loading torch."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/kfd").exists()


def tally_precision(rows: dict, op_type: str, low: bool, flops: int = 0, kernel: int | None = None,
                    depthwise: bool = False) -> None:
    """Count one node of an artifact's graph into `rows` (a Backend.precision_coverage result in the making):
    `low` when the runtime computes it in the artifact's low precision (int8), else float."""
    key = (op_type, kernel, depthwise)
    row = rows.setdefault(key, {"op_type": op_type, "kernel": kernel, "depthwise": depthwise,
                                "low_nodes": 0, "float_nodes": 0, "low_flops": 0, "float_flops": 0})
    side = "low" if low else "float"
    row[f"{side}_nodes"] += 1
    row[f"{side}_flops"] += int(flops)


def conv_facts(out_numel: int, weight_dims: list[int], in_channels: int | None) -> dict:
    """{flops, kernel, depthwise} of a 2-D convolution from its output size and [O, I/groups, kh, kw] weights."""
    kernel = int(weight_dims[-1])
    depthwise = bool(weight_dims[1] == 1 and in_channels and in_channels > 1)
    return {"flops": 2 * out_numel * int(np.prod(weight_dims[1:])), "kernel": kernel, "depthwise": depthwise}


def calibration_batches(calibration: list[np.ndarray] | None, backend: str) -> list[np.ndarray]:
    """The calibration batches an int8 export needs; a clear error when the caller gave none."""
    if not calibration:
        raise ValueError(f"an int8 {backend} export needs calibration images (harness.measure.images)")
    return calibration


def cpu_flags() -> set[str]:
    """This CPU's feature flags (Linux /proc/cpuinfo); empty where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def cpu_has_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX512-BF16 or AMX), as bf16 kernels of torch and OpenVINO need?"""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
