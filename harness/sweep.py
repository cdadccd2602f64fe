"""Sweep planning and execution: (model spec x target) jobs, each timed in a child process, each
stored as soon as it finishes."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from backends import BACKENDS

from . import environment, storage
from .runner import run_in_child
from .spec import ModelSpec, Target
from .stats import summarize
from .timing import TimingPolicy

# What --device accepts: a family, or one exact device ("mac:ane", "android:<serial>").
DEVICE_FAMILIES = ("cpu", "gpu", "intel-gpu", "npu", "mac", "android")
DEVICE_HELP = "cpu, gpu, intel-gpu, npu, mac, mac:cpu|gpu|ane|all, android, android:<serial>"
DEFAULT_CACHE = Path(os.environ.get("HARNESS_CACHE", "artifacts"))
# max |runtime - torch| / max |torch|: float32 runtimes agree to ~1e-6; fp16 weights/compute to ~1e-3
PARITY_TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}


def all_targets() -> list[Target]:
    return [Target(b.name, d) for b in BACKENDS.values() for d in b.devices]


def check_device(device: str) -> str:
    """The device name if it is one --device accepts, else ValueError listing the choices."""
    known = {t.device for t in all_targets()}
    if device in DEVICE_FAMILIES or device in known:
        return device
    if device.startswith("android:") and len(device) > len("android:"):
        return device
    raise ValueError(f"unknown device {device!r}; choose one of: {DEVICE_HELP}")


def device_matches(requested: str, device: str) -> bool:
    """Does a stored run's device fall under a --device value (a family or an exact device)?"""
    return requested == device or device.startswith(f"{requested}:")


def _selects(requested: str, device: str) -> str | None:
    """The concrete device a backend device stands for under --device `requested`, or None."""
    if requested == device:
        return device
    if requested == "mac" and device.startswith("mac:"):
        return device
    if device == "android" and requested.startswith("android:"):
        return requested  # keep the serial
    return None


def target_status() -> list[tuple[Target, str | None]]:
    """Every known target with None (available) or the one-line reason it is not."""
    return [(t, BACKENDS[t.backend].unavailable_reason(t.device)) for t in all_targets()]


def plan_targets(device: str, backends: list[str] | None, precision: str = "fp32", delegate: str = "xnnpack",
                 ) -> tuple[list[Target], list[tuple[Target, str]]]:
    """(targets to run, [(target, reason skipped)]) on `device`, optionally narrowed to `backends`."""
    runnable, skipped = [], []
    for candidate in all_targets():
        concrete = _selects(device, candidate.device)
        if concrete is None or (backends and candidate.backend not in backends):
            continue
        backend = BACKENDS[candidate.backend]
        options = f"delegate={delegate}" if backend.is_remote(concrete) else ""
        target = Target(candidate.backend, concrete, options)
        reason = backend.unavailable_reason(concrete)
        if reason is None and precision not in backend.precisions:
            reason = f"no {precision} export (it offers {', '.join(backend.precisions)})"
        (skipped.append((target, reason)) if reason else runnable.append(target))
    return runnable, skipped


@dataclass
class Job:
    spec: ModelSpec
    target: Target
    threads: int
    policy: TimingPolicy
    cache_dir: Path = DEFAULT_CACHE
    precision: str = "fp32"
    profile_iterations: int = 0  # >0: per-op profile after timing, averaged over this many runs

    def payload(self) -> dict:
        return {"spec": self.spec.as_dict(), "backend": self.target.backend, "device": self.target.device,
                "options": self.target.option_dict(),
                "threads": self.threads, "policy": asdict(self.policy), "cache_dir": str(self.cache_dir.resolve()),
                "precision": self.precision, "tolerance": PARITY_TOLERANCE[self.precision],
                "profile_iterations": self.profile_iterations}


PEAK_POLICY = TimingPolicy(warmup_iterations=5, warmup_seconds=1.0, min_iterations=20, min_seconds=2.0)


def measure_peak(target: Target, threads: int, size: int, cache_dir: Path) -> dict:
    """A runtime's dense-GEMM throughput, measured in a child process like every run."""
    job = {"kind": "peak", "backend": target.backend, "device": target.device, "threads": threads,
           "gemm_size": size, "policy": asdict(PEAK_POLICY), "cache_dir": str(Path(cache_dir).resolve())}
    return run_in_child(job, timeout_for(PEAK_POLICY))


def timeout_for(policy: TimingPolicy) -> float:
    # export and compilation of the largest variants take a few minutes on 2 cores
    return 900 + policy.max_seconds * 2


def execute(engine, sweep_id: int | None, job: Job) -> dict:
    """Run one job in a child process and store its run; returns the stored result with run_id."""
    result = run_in_child(job.payload(), timeout_for(job.policy))
    summary = summarize(result["samples_ns"]).as_dict() if result.get("samples_ns") else result.get("summary")
    run_id = storage.save_run(engine, sweep_id=sweep_id, host=environment.host_facts(), spec=job.spec.as_dict(),
                              target={"backend": job.target.backend, "device": job.target.device,
                                      "name": job.target.name},
                              threads=job.threads, precision=job.precision, result=result, summary=summary)
    return {**result, "run_id": run_id, "summary": summary}
