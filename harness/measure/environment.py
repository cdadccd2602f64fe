"""What changes a number, recorded with every run: CPU, cores, threads, OS, versions, git revision."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path

# Thread-pool sizes the math libraries read once, when they load: a worker sets them before any import.
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# ... and with the variables that shape how those threads behave, recorded with every run.
THREAD_VARIABLES = (*THREAD_COUNT_VARIABLES, "OMP_WAIT_POLICY", "OPENBLAS_CORETYPE", "KMP_AFFINITY")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def git_revision() -> str | None:
    repo = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) or None


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), which caps every runtime's threads."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def thread_environment(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in THREAD_COUNT_VARIABLES}


# Instruction-set features that change which kernels a runtime picks.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
             "amx_bf16", "amx_int8", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")


def isa() -> list[str]:
    """The ISA_FLAGS this CPU has (Linux /proc/cpuinfo; macOS sysctl)."""
    text = _read("/proc/cpuinfo")
    if text:
        flags = set()
        for line in text.splitlines():
            if line.startswith(("flags", "Features")):
                flags.update(line.split(":", 1)[1].split())
        return [f for f in ISA_FLAGS if f in flags]
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, timeout=5).stdout.lower()
        except (OSError, subprocess.SubprocessError):
            return []
        return [f for f in ("avx2", "avx512f", "bf16", "i8mm") if f in out] + (["asimd"] if "arm64" in out else [])
    return []



def isa_flags() -> str:
    """The ISA_FLAGS this CPU has, as one string: part of the host's identity."""
    return " ".join(isa())


def host_facts() -> dict:
    """Facts about the machine, identical for every run on it: its identity in the database. The ISA
    is part of it: one CPU name ("AMD EPYC") covers machines whose runtimes pick different kernels."""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "isa": isa_flags(),
    }


def run_facts(threads: int, versions: dict[str, str]) -> dict:
    """Facts that can change between runs on one machine."""
    temps = sorted(Path("/sys/class/thermal").glob("thermal_zone*/temp"))
    return {
        "python": platform.python_version(),
        "threads": threads,
        "usable_cores": usable_cores(),
        "versions": versions,
        "git_revision": git_revision(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "thermal_millicelsius": [t for p in temps if (t := _read(str(p)))],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
    }
