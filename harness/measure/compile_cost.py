"""torch.compile's cold compile, measured once per compile key and kept.

A cold compile (inductor into an empty cache, in a fresh process) costs tens of seconds per model and
is the same number every time for the same model, versions, mode and host. The first run of a key
measures it in a fresh process and keeps it here, with the inductor cache it filled; every later run
of that key compiles warm from that cache (its own warm compile) and stores the kept cold figure,
marked as reused. `harness run --cold-compile` measures it again.

    CACHE/compile-cost/<key>/cold.json   the cold compile: compile_ms, load_ms, graphs, when, where
    CACHE/compile-cost/<key>/inductor/   the inductor cache that compile filled
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backends import BACKENDS

from .. import baselines
from ..protocol import Job
from ..spec import fastvit_source_hash
from .cache import cache_key
from .environment import host_facts

FOLDER = "compile-cost"
RECORD = "cold.json"
INDUCTOR = "inductor"


@dataclass(frozen=True)
class ColdCompile:
    """A kept cold compile: what it cost, and when and under which key it was measured."""
    key: str
    compile_ms: float
    load_ms: float | None
    graphs: int
    graph_breaks: int
    measured_at: float  # unix time
    inductor_cache: Path  # the cache it filled, which later runs compile warm from


def compiles_on_load(job: Job) -> bool:
    """Whether the job's runtime compiles the model when it loads (torch.compile), on this machine."""
    backend = BACKENDS[job.target.backend]
    return backend.cache_filled_by_load and not backend.is_remote(job.target.device) and not job.layer


def compile_key(job: Job) -> str:
    """Everything a cold compile's cost depends on: the model (spec, weights, model code), the runtime (versions,
    backend code), mode and device (the target), precision, threads, and the host it compiles on."""
    from .artifacts import exporter_hash

    backend = BACKENDS[job.target.backend]
    parts = {"spec": job.spec.as_dict(), "weights": job.spec.weights_id(), "fastvit": fastvit_source_hash(),
             "target": job.target.name, "precision": job.precision, "threads": job.threads,
             "versions": backend.versions(), "backend_code": exporter_hash(backend), "host": host_facts()}
    if job.spec.is_baseline:
        parts["baseline_init"] = baselines.INIT
    return cache_key(parts)


def _entry(job: Job, key: str | None = None) -> Path:
    return Path(job.cache_dir) / FOLDER / (key or compile_key(job))


def kept(job: Job) -> ColdCompile | None:
    """The kept cold compile of the job's key (None: none yet, or one that cannot be read, which is removed)."""
    key = compile_key(job)
    entry = _entry(job, key)
    if not entry.exists():
        return None
    try:
        found = json.loads((entry / RECORD).read_text())
        record = ColdCompile(key, float(found["compile_ms"]), found.get("load_ms"), int(found["graphs"]),
                             int(found["graph_breaks"]), float(found["measured_at"]), entry / INDUCTOR)
        if not record.inductor_cache.is_dir():
            raise ValueError("no inductor cache")
        return record
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(entry, ignore_errors=True)
        return None


def needs_cold_compile(job: Job) -> bool:
    """A job that measures its cold compile (none kept for its key, or --cold-compile): it needs a fresh process,
    where nothing of inductor is imported or compiled yet, as every cold figure before it was measured."""
    return compiles_on_load(job) and (job.cold_compile or kept(job) is None)


def keep(job: Job, compiled: dict, load_ms: float | None, inductor_cache: Path) -> None:
    """Keep a cold compile the run just measured, with a copy of the cache it filled; published whole (a rename),
    replacing an older one of the same key."""
    entry = _entry(job)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        shutil.copytree(inductor_cache, tmp / INDUCTOR, symlinks=True)
        (tmp / RECORD).write_text(json.dumps({
            "compile_ms": compiled["compile_ms"], "load_ms": load_ms, "graphs": compiled["graphs"],
            "graph_breaks": compiled["graph_breaks"], "measured_at": time.time(), "job": job.describe()}, indent=1))
        old = entry.with_name(f".{entry.name}-old-{os.getpid()}")
        if entry.exists():
            os.rename(entry, old)
        try:
            os.rename(tmp, entry)
        except OSError:  # another run kept the same key first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
