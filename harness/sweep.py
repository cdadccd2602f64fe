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

# Device names a user can pass to --device, and the backends' device names they select.
DEVICES = {
    "cpu": ("cpu",),
    "gpu": ("gpu",),
    "intel-gpu": ("intel-gpu",),
    "npu": ("npu",),
}
DEFAULT_CACHE = Path(os.environ.get("HARNESS_CACHE", "artifacts"))
PARITY_TOLERANCE = 1e-3  # max |runtime - torch| / max |torch|, float32 runtimes


def all_targets() -> list[Target]:
    return [Target(b.name, d) for b in BACKENDS.values() for d in b.devices]


def target_status() -> list[tuple[Target, str | None]]:
    """Every known target with None (available) or the one-line reason it is not."""
    return [(t, BACKENDS[t.backend].unavailable_reason(t.device)) for t in all_targets()]


def plan_targets(device: str, backends: list[str] | None) -> tuple[list[Target], list[tuple[Target, str]]]:
    """(targets to run, [(target, reason skipped)]) on `device`, optionally narrowed to `backends`."""
    runnable, skipped = [], []
    for target in all_targets():
        if target.device not in DEVICES[device] or (backends and target.backend not in backends):
            continue
        reason = BACKENDS[target.backend].unavailable_reason(target.device)
        (skipped.append((target, reason)) if reason else runnable.append(target))
    return runnable, skipped


@dataclass
class Job:
    spec: ModelSpec
    target: Target
    threads: int
    policy: TimingPolicy
    cache_dir: Path = DEFAULT_CACHE
    tolerance: float = PARITY_TOLERANCE

    def payload(self) -> dict:
        return {"spec": self.spec.as_dict(), "backend": self.target.backend, "device": self.target.device,
                "threads": self.threads, "policy": asdict(self.policy), "cache_dir": str(self.cache_dir.resolve()),
                "tolerance": self.tolerance}


def timeout_for(policy: TimingPolicy) -> float:
    # export and compilation of the largest variants take a few minutes on 2 cores
    return 900 + policy.max_seconds * 2


def execute(engine, sweep_id: int | None, job: Job) -> dict:
    """Run one job in a child process and store its run; returns the stored result with run_id."""
    result = run_in_child(job.payload(), timeout_for(job.policy))
    summary = summarize(result["samples_ns"]).as_dict() if result.get("samples_ns") else None
    run_id = storage.save_run(engine, sweep_id=sweep_id, host=environment.host_facts(), spec=job.spec.as_dict(),
                              target={"backend": job.target.backend, "device": job.target.device},
                              threads=job.threads, result=result, summary=summary)
    return {**result, "run_id": run_id, "summary": summary}
