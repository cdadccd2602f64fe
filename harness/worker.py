"""One run in its own process: build, export (or reuse), load, check parity, time. Result as JSON.

    python -m harness.worker JOB.json RESULT.json

The parent sets thread-count environment variables before this process starts, so every
runtime sees them at import. A crash here (segfault, abort) cannot take the sweep down.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np


def relative_error(reference: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    max_abs = float(np.abs(reference - output).max())
    return max_abs, max_abs / max(float(np.abs(reference).max()), 1e-12)


def artifact_parts(spec, backend) -> dict:
    """Everything that shapes an exported artifact: its cache key."""
    import torch

    from harness.spec import fastvit_source_hash

    return {"spec": spec.as_dict(), "weights": spec.weights_id(), "backend": backend.name,
            "versions": backend.versions(), "torch": torch.__version__, "fastvit": fastvit_source_hash()}


def run_job(job: dict) -> dict:
    import torch

    from backends import BACKENDS
    from harness import cache, environment
    from harness.spec import ModelSpec
    from harness.timing import TimingPolicy, measure

    spec = ModelSpec(**job["spec"])
    backend = BACKENDS[job["backend"]]
    threads = job["threads"]
    # torch only builds the model and the reference output here: one thread, so no OpenMP team
    # is left spinning beside the runtime being timed. The torch backend sets its own count.
    torch.set_num_threads(1)
    result = {"started_at": time.time(), "environment": environment.run_facts(threads, {
        **backend.versions(), "torch": torch.__version__})}

    model = spec.build()
    example = torch.randn(spec.batch, 3, spec.resolution, spec.resolution,
                          generator=torch.Generator().manual_seed(1234))
    with torch.inference_mode():
        reference = model(example).float().numpy()

    artifact = None
    if backend.artifact_name:
        artifact, cached = cache.get_or_build(Path(job["cache_dir"]) / backend.name, artifact_parts(spec, backend),
                                              backend.artifact_name,
                                              lambda out: backend.export(model, example, out))
        result.update(artifact_path=str(artifact), artifact_cached=cached,
                      artifact_key=artifact.parent.name)

    session = backend.load(model, artifact, job["device"], threads)
    session.prepare(example.numpy())
    measurement = measure(session.run, TimingPolicy(**job["policy"]))
    output = session.output()
    if output.shape != reference.shape:
        result.update(status="invalid", error=f"output shape {output.shape} != torch's {reference.shape}")
    else:
        max_abs, rel = relative_error(reference, output)
        result.update(parity_max_abs=max_abs, parity_rel=rel)
        if not rel <= job["tolerance"]:
            result.update(status="invalid", error=f"output differs from torch: relative error {rel:.2e} "
                                                  f"> tolerance {job['tolerance']:.0e}")
        else:
            result["status"] = "ok"
    result.update(first_ns=measurement.first_ns, warmup_ns=measurement.warmup_ns,
                  samples_ns=measurement.samples_ns, finished_at=time.time())
    return result


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    try:
        result = run_job(job)
    except Exception as exc:  # reported as a failed run, with the traceback kept for the record
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=8)}
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
