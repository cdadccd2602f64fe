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


def artifact_parts(spec, backend, precision: str) -> dict:
    """Everything that shapes an exported artifact: its cache key."""
    import torch

    from harness.spec import fastvit_source_hash

    from harness import baselines

    parts = {"spec": spec.as_dict(), "weights": spec.weights_id(), "backend": backend.name, "precision": precision,
             "versions": backend.versions(), "torch": torch.__version__, "fastvit": fastvit_source_hash()}
    if spec.is_baseline:
        parts["baseline_init"] = baselines.INIT
    return parts


def export_cached(spec, backend, precision: str, model, example, cache_dir: Path) -> tuple[Path, bool]:
    """The backend's artifact for this spec and precision, from the cache or freshly exported."""
    from harness import cache

    return cache.get_or_build(Path(cache_dir) / backend.name, artifact_parts(spec, backend, precision),
                              backend.artifact_name, lambda out: backend.export(model, example, out, precision))


def run_job(job: dict) -> dict:
    import torch

    from backends import BACKENDS
    from harness import environment
    from harness.roofline import class_flops
    from harness.spec import ModelSpec
    from harness.timing import TimingPolicy, measure

    spec = ModelSpec(**job["spec"])
    backend = BACKENDS[job["backend"]]
    threads = job["threads"]
    # torch only builds the model and the reference output here: one thread, so no OpenMP team
    # is left spinning beside the runtime being timed. The torch backend sets its own count.
    torch.set_num_threads(1)
    result = {"started_at": time.time(), "environment": {
        **environment.run_facts(threads, {**backend.versions(), "torch": torch.__version__}),
        "timing": backend.timing, "precision": job["precision"]}}

    model = spec.build()
    example = torch.randn(spec.batch, 3, spec.resolution, spec.resolution,
                          generator=torch.Generator().manual_seed(1234))
    with torch.inference_mode():
        reference = model(example).float().numpy()
    result["class_flops"] = class_flops(model, example)

    artifact = None
    if backend.artifact_name:
        artifact, cached = export_cached(spec, backend, job["precision"], model, example, job["cache_dir"])
        result.update(artifact_path=str(artifact), artifact_cached=cached,
                      artifact_key=artifact.parent.name)

    policy = TimingPolicy(**job["policy"])
    if backend.is_remote(job["device"]):
        # The phone's tool prints no outputs: parity is checked on this host with the same artifact.
        host = backend.load(model, artifact, "cpu", threads)
        host.prepare(example.numpy())
        host.run()
        output = host.output()
        result.update(tool_run(backend.run_remote(artifact, job["device"], threads, policy, **job["options"])))
    else:
        session = backend.load(model, artifact, job["device"], threads, job["precision"])
        session.prepare(example.numpy())
        measurement = measure(session.run, policy)
        output = session.output()
        result.update(first_ns=measurement.first_ns, warmup_ns=measurement.warmup_ns,
                      samples_ns=measurement.samples_ns)
        if job.get("profile_iterations"):  # after timing: profilers slow a runtime down
            result["op_profile"] = classify(session.profile(job["profile_iterations"]) or [])
    result["finished_at"] = time.time()
    check_parity(result, reference, output, job["tolerance"])
    return result


def run_peak(job: dict) -> dict:
    """A runtime's dense GEMM throughput on this host: the roof for its roofline."""
    import torch

    from backends import BACKENDS
    from harness import cache
    from harness.roofline import Gemm, gemm_flops
    from harness.stats import summarize
    from harness.timing import TimingPolicy, measure

    torch.set_num_threads(1)
    torch.manual_seed(0)
    backend, size = BACKENDS[job["backend"]], job["gemm_size"]
    model, example = Gemm(size).eval(), torch.randn(size, size)
    artifact = None
    if backend.artifact_name:
        parts = {"gemm": size, "backend": backend.name, "versions": backend.versions(), "torch": torch.__version__}
        artifact, _ = cache.get_or_build(Path(job["cache_dir"]) / backend.name, parts, backend.artifact_name,
                                         lambda out: backend.export(model, example, out, "fp32"))
    session = backend.load(model, artifact, job["device"], job["threads"])
    session.prepare(example.numpy())
    samples = measure(session.run, TimingPolicy(**job["policy"])).samples_ns
    median_s = summarize(samples).median_ms / 1e3
    return {"status": "ok", "gflops": gemm_flops(size) / median_s / 1e9, "samples": len(samples)}


def tool_run(remote: dict) -> dict:
    """A run timed on a phone by benchmark_model, which reports statistics, not samples."""
    from harness.importers import from_benchmark_model

    partial, summary = from_benchmark_model(remote["tool_result"])
    partial["environment_extra"].update(phone=remote.get("phone"), tool_output_tail=remote.get("tool_output_tail"))
    return {**partial, "summary": summary}


def classify(rows: list[dict]) -> list[dict]:
    from harness.opclass import op_class

    return [{"op_name": r["op_name"][:255], "op_type": r["op_type"], "calls": r["calls"], "total_ms": r["total_ms"],
             "op_class": op_class(r["op_type"], r.get("kernel"), r.get("depthwise", False))} for r in rows]


def check_parity(result: dict, reference: np.ndarray, output: np.ndarray, tolerance: float) -> None:
    if output.shape != reference.shape:
        result.update(status="invalid", error=f"output shape {output.shape} != torch's {reference.shape}")
    else:
        max_abs, rel = relative_error(reference, output)
        result.update(parity_max_abs=max_abs, parity_rel=rel)
        if not rel <= tolerance:
            result.update(status="invalid", error=f"output differs from torch: relative error {rel:.2e} "
                                                  f"> tolerance {tolerance:.0e}")
        else:
            result["status"] = "ok"


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    try:
        result = run_peak(job) if job.get("kind") == "peak" else run_job(job)
    except Exception as exc:  # reported as a failed run, with the traceback kept for the record
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                  "environment_extra": {"traceback": traceback.format_exc(limit=8)}}
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
