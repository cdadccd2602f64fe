"""What a run costs besides latency, measured in the worker: memory before and while a model loads and
runs, the artifact's size, the model's parameter bytes.

Memory is the process's resident set. On Linux the peak ("high-water mark", VmHWM) is reset before each
phase by writing 5 to /proc/self/clear_refs (Linux 4.0+), so a phase's peak is its own; elsewhere (or
where the reset is refused) the peak is the process's lifetime peak (getrusage), and the figures say so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import sys
from pathlib import Path

from .cache import MANIFEST

MB = 2**20


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def release_freed() -> None:
    """Collect garbage and hand the heap's free pages back to the OS (glibc's malloc_trim), so memory an
    export used and freed is not reused unseen by the model loaded next, and the baseline is what is held."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
            pass


def resident_mb() -> float | None:
    """The process's resident memory now, where the OS tells (Linux: VmRSS)."""
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else None


def reset_peak() -> bool:
    """Start a new peak window; False where the OS cannot (then peak_mb is the lifetime peak)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """The highest resident memory since the last reset_peak (or since the process started)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MB if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, KiB elsewhere


def artifact_bytes(artifact: Path) -> int:
    """Every file of an artifact's cache entry (an OpenVINO .xml with its .bin, a .pte with its sidecar,
    an .mlpackage bundle), the cache's own manifest excepted."""
    entry = Path(artifact).parent
    return sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and f.name != MANIFEST)


def param_bytes(module) -> int:
    """Bytes of a torch module's parameters and buffers, in their own dtypes."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
