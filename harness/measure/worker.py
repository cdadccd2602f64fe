"""One job in its own process: build, export (or reuse), load, check parity, time.

    python -m harness.measure.worker JOB.json RESULT.json
    python -m harness.measure.worker --serve THREADS     (one job per line on stdin: JOB.json<TAB>RESULT.json)

JOB.json is a `harness.protocol` job; RESULT.json receives its result. A failed job's file is kept
(its path is in the run's log), so the first form reproduces it by hand. The math libraries' thread
counts are set from the job (or THREADS) before any of them loads. The second form keeps torch and
the runtime loaded across many small jobs (`harness layers`) and answers "done" on stdout after
each one; whatever the runtimes print goes to stderr. A crash here (segfault, abort) cannot take
the sweep down: the parent records it.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

COMPILE_CACHE = ".compiled"  # beside a backend's artifacts: a runtime's own cache of compiled models


def measure_job(job, result) -> None:
    """Time `job` (a protocol.Job), filling `result` (a protocol.RunResult) as it goes, so a failure
    half way keeps what was learnt before it."""
    import tempfile

    # a compiling runtime's cache, empty at the start of every job: its cold compile is a first compile
    with tempfile.TemporaryDirectory(prefix="harness-compile-") as compile_dir:
        _measure_job(job, result, Path(compile_dir))


class Phases:
    """Seconds each phase of a job took, filled as it goes (stored with the run as environment "phases_s": where
    a sweep's time goes besides timing, and what a failed job had done)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """The time since the previous lap is `name`'s."""
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 3)
        self._last = now


def _measure_job(job, result, compile_dir: Path) -> None:
    phases = Phases()
    import torch

    from backends import BACKENDS
    from harness.measure import compile_cost, environment, footprint, interference
    from harness.measure import images
    from harness.measure.artifacts import coverage_of, model_artifact, precision_coverage_of
    from harness.measure.built import ModelOnDemand, built_model, kept_output
    from harness.spec import example_input
    from harness.measure.cache import build_seconds
    from harness.measure.layers import layer_model
    from harness.measure.timing import measure
    from harness.opclass import classify_rows
    from harness.protocol import LOW_PRECISIONS, PARITY_TOLERANCE, Footprint
    from harness.stats import summarize

    backend = BACKENDS[job.target.backend]
    # torch only builds the model and the reference output here: one thread, so no OpenMP team
    # is left spinning beside the runtime being timed. The torch backend sets its own count.
    torch.set_num_threads(1)
    result.environment = {**environment.run_facts(job.threads, {**backend.versions(), "torch": torch.__version__}),
                          "timing": backend.timing, "precision": job.precision, "phases_s": phases.seconds}
    phases.lap("imports")

    if job.layer:
        layer, example = layer_model(job.spec, job.layer)
        model = ModelOnDemand(lambda: layer)
        result.environment["layer_path"] = job.layer
        with torch.inference_mode():
            reference = layer(example).float().numpy()
        params = footprint.param_bytes(layer)
    else:  # built only where something needs it: not to time an artifact already exported
        model, example = ModelOnDemand(lambda: built_model(job.spec, Path(job.cache_dir))), example_input(job.spec)
        reference, params = kept_output(job.spec, Path(job.cache_dir), model, example)
        if not backend.artifact_name:  # the module is what this runtime loads: built here, not in its load time
            model()
    phases.lap("build")
    flops = cached_flops(job, model, example)
    phases.lap("flops")
    if job.layer:  # the model spec's FLOPs table holds whole models; a layer's go with its run
        result.environment["layer_flops"] = sum(flops.values())
    else:
        result.class_flops = flops

    calibration = None
    if job.precision in LOW_PRECISIONS:
        calibration = images.calibration_set(job.spec.resolution, job.calibration)
        result.calibration = calibration.identity
        result.environment["calibration"] = {"source": calibration.source, "images": len(calibration.names),
                                             "samples": len(calibration.images)}
    phases.lap("calibration")
    artifact, sizes = None, {"param_bytes": params}
    if backend.artifact_name:
        artifact, cached = model_artifact(job.spec, backend, job.precision, model, example, Path(job.cache_dir),
                                          layer=job.layer, calibration=calibration, keep_float=job.keep_float)
        result.artifact_path, result.artifact_key = str(artifact), artifact.parent.name
        result.environment["artifact_cached"] = cached
        phases.lap("artifact")
        # the coverage tables hold each whole-model spec's artifact (fp32 for delegation), never a layer's
        if job.precision == "fp32" and not job.layer:
            result.coverage = coverage_of(backend, artifact)
        if job.precision in LOW_PRECISIONS and not job.layer:
            result.precision_coverage = precision_coverage_of(backend, artifact)
        phases.lap("coverage")
        built = build_seconds(artifact)
        sizes.update(artifact_bytes=footprint.artifact_bytes(artifact), build_ms=built * 1e3 if built else None,
                     export_ms=0.0 if cached else (built * 1e3 if built else None))
    result.footprint = Footprint(**sizes)

    device = job.target.device
    if backend.is_remote(device):
        # The device's tool prints no outputs: parity is checked on this host with the same artifact.
        session = backend.load(module_to_load(backend, model), artifact, "cpu", job.threads, job.precision)
        session.prepare(example.numpy())
        session.infer()
        output = session.output()
        if not job.layer:
            result.agreement = measure_agreement(session, model, job, result)
        extra = {"example": example.numpy(), "precision": job.precision} if backend.remote_takes_example else {}
        if backend.farm:
            extra.update(repeat=job.repeat, retry_failed=job.retry_failed)
        timing = backend.time_remote(artifact, device, job.threads, job.policy, **extra, **job.target.option_dict())
        take_tool_timing(result, timing)
        device_output = getattr(timing.tool_result, "output", None)
        if device_output is not None:  # a farm ran our input on the device: parity is the device's own output
            result.environment["parity_from"] = "device"
            output = device_output.reshape(reference.shape) if device_output.size == reference.size else device_output
    else:
        if backend.runtime_module:  # the runtime's own code is not the model's memory
            importlib.import_module(backend.runtime_module)
        footprint.release_freed()  # nor is what the export left behind
        options = load_options(backend, job.target, example, compile_dir)
        cold = kept_cold_compile(job)
        if cold is not None:  # compiled warm from the cache the kept cold compile filled
            options["compile_cache"] = cold.inductor_cache
        phases.lap("runtime")
        rss_before = footprint.resident_mb()
        own_window = footprint.reset_peak()
        began = time.perf_counter()
        session = backend.load(module_to_load(backend, model), artifact, device, job.threads, job.precision, **options)
        load_ms = (time.perf_counter() - began) * 1e3
        peak_load = footprint.peak_mb()
        session.prepare(example.numpy())
        phases.lap("load")
        footprint.reset_peak()
        before = interference.snapshot()
        measured = measure(session.infer, job.policy)
        result.interference = interference.between(before, interference.snapshot())
        peak_timing = footprint.peak_mb()
        result.noisy = bool(result.interference and result.interference.noisy(job.max_other_cpu, job.max_steal))
        phases.lap("timing")
        compiled = session.compilation()  # now: a recompilation during timing is counted, none after it
        output = session.output()
        result.first_ns, result.warmup_ns, result.samples_ns = (measured.first_ns, measured.warmup_ns,
                                                                measured.samples_ns)
        result.summary = summarize(measured.samples_ns)
        result.environment.update(session.facts())
        result.footprint = replace(
            result.footprint, load_ms=load_ms, rss_before_mb=rss_before, peak_load_mb=peak_load,
            peak_timing_mb=peak_timing, peak_is_lifetime=not own_window, gpu_peak_mb=session.device_memory_mb(),
            model_peak_mb=max(peak_load, peak_timing) - rss_before if rss_before is not None else None)
        if job.profile_iterations:  # after timing: profilers slow a runtime down
            iterations = profile_iterations(job.profile_iterations, result.summary.median_ms)
            result.environment["profile_iterations"] = iterations
            result.op_profile = classify_rows(session.profile(iterations) or [])
            phases.lap("profile")
        if not job.layer:  # after timing too: the held-out photographs through the same session
            result.agreement = measure_agreement(session, model, job, result)
            phases.lap("agreement")
        del session
        warm, warm_compiled = None, None
        if cold is not None:  # this run's own load was the warm one; the cold one was measured before, and kept
            warm, warm_compiled = load_ms, compiled
            result.footprint = replace(result.footprint, load_ms=cold.load_ms, load_warm_ms=warm)
        elif not job.layer:  # a layer alone is timed for where its time goes, not for what it costs to start
            warm, warm_compiled = warm_load(backend, model, artifact, device, job, options)
            result.footprint = replace(result.footprint, load_warm_ms=warm)
            phases.lap("warm_load")
        if compiled is not None:
            result.compilation = compilation_of(job, compiled, warm_compiled, cold, load_ms, compile_dir)
        if compile_cost.compiles_on_load(job):  # which kept cold compile the run measured, or reused
            result.environment["compile_cold"] = {"key": cold.key if cold else compile_cost.compile_key(job),
                                                  "reused": cold is not None,
                                                  "measured_at": cold.measured_at if cold else time.time()}
    phases.lap("other")
    result.finished_at = time.time()
    if job.precision in LOW_PRECISIONS and result.agreement is not None:
        # one random input's error is recorded, but a quantized model is judged by its answers on photographs
        check_parity(result, reference, output, float("inf"))
        check_agreement(result)
    else:  # and a layer alone (no answers to compare) by its error, within the precision's tolerance
        tolerance = job.tolerance
        if result.environment.get("parity_from") == "device" and job.precision == "fp32":
            # a farm's NPU computes a float model in fp16 (AI Hub's default): judged as an fp16 artifact is
            tolerance = max(tolerance, PARITY_TOLERANCE["fp16"])
            result.environment["parity_tolerance"] = tolerance
        check_parity(result, reference, output, tolerance)
    check_steady(result)


def module_to_load(backend, model):
    """What `backend.load` takes as the model: the module for a runtime that runs it (torch, torch.compile), nothing
    for one that loads its exported artifact."""
    from harness.measure.built import module_of

    return module_of(model) if not backend.artifact_name else None


PROFILE_SECONDS = 1.0  # inferences profiled: up to the job's count, but about this long for a slow model
PROFILE_AT_LEAST = 3


def profile_iterations(most: int, median_ms: float) -> int:
    """How many inferences the op profile averages: `most`, fewer for a model whose inferences would take more
    than PROFILE_SECONDS (a profile gives shares of the time, which a few inferences already pin), never fewer
    than PROFILE_AT_LEAST."""
    fit = int(PROFILE_SECONDS * 1e3 // median_ms) if median_ms > 0 else most
    return max(min(most, fit), min(most, PROFILE_AT_LEAST))


def cached_flops(job, model, example) -> dict[str, int]:
    """The model's FLOPs per op class, counted once per spec and layer and kept in the cache (a sweep counts the
    same model on every target): a FlopCounterMode pass takes about a second in a new process."""
    import inspect

    import torch

    from harness import baselines, opclass
    from harness.measure import flops as counter
    from harness.measure.built import module_of
    from harness.measure.cache import cache_key, write_whole
    from harness.spec import fastvit_source_hash

    parts = {"spec": job.spec.as_dict(), "layer": job.layer, "fastvit": fastvit_source_hash(),
             "baseline_init": baselines.INIT if job.spec.is_baseline else None, "torch": torch.__version__,
             "counter": [inspect.getsource(module) for module in (counter, opclass)]}
    path = Path(job.cache_dir) / "flops" / f"{cache_key(parts)}.json"
    if path.exists():
        return json.loads(path.read_text())
    found = counter.class_flops(module_of(model), example)
    write_whole(path, lambda temporary: temporary.write_text(json.dumps(found)))
    return found


def kept_cold_compile(job):
    """The kept cold compile a torch.compile run reuses (compile_cost), or None where it compiles cold itself."""
    from harness.measure import compile_cost

    if not compile_cost.compiles_on_load(job) or job.cold_compile:
        return None
    return compile_cost.kept(job)


def compilation_of(job, compiled: dict, warm_compiled: dict | None, cold, load_ms: float, compile_dir: Path):
    """The run's Compilation: its own cold and warm compiles (the cold one kept for later runs of its key), or
    the kept cold figure, marked reused, beside its own warm compile."""
    from harness.measure import compile_cost
    from harness.protocol import Compilation

    warm_ms = (warm_compiled or {}).get("compile_ms")
    if cold is not None:
        return Compilation(**{**compiled, "compile_ms": cold.compile_ms}, compile_warm_ms=warm_ms, cold_reused=True)
    if compile_cost.compiles_on_load(job):
        compile_cost.keep(job, compiled, load_ms, compile_dir)
    return Compilation(**compiled, compile_warm_ms=warm_ms)


def check_steady(result) -> None:
    """A compiled model that compiled again while it was timed is stored as recompiled: its samples include
    compilation, so the number is not the model's latency."""
    found = result.compilation
    if result.status == "ok" and found is not None and found.recompiles:
        result.status = "recompiled"
        result.error = (f"torch.compile compiled {found.recompiles} more graph(s) while the run was timed (a guard "
                        "failed): the samples include compilation")


def load_options(backend, target, example, compile_dir: Path | None) -> dict:
    """What `backend.load` takes besides the model: the target's options, the example input a compiling runtime
    compiles for, and (torch.compile) the job's own empty compile cache, which the cold load fills."""
    options = {k: v for k, v in target.option_dict().items() if k in backend.option_names}
    if backend.load_needs_example:
        options["example"] = example.numpy()
    if backend.cache_filled_by_load:
        options["compile_cache"] = compile_dir
    return options


def measure_agreement(session, model, job, result):
    """The session against fp32 torch on the held-out photographs (and the --eval folder, where given).

    Kept in the cache per artifact (or, for a runtime that runs the torch module, per model), runtime and its code,
    precision, threads and host: the same bytes on the same runtime and CPU give the same answers, and a large
    model's photographs cost a second or more a run. A run that takes a kept answer says so (environment
    "agreement_reused"); its own parity check on the example input is always its own."""
    import inspect
    from dataclasses import asdict

    from backends import BACKENDS
    from harness import baselines
    from harness.measure import agreement, images
    from harness.measure.artifacts import exporter_hash
    from harness.measure.cache import cache_key, write_whole
    from harness.measure.environment import host_facts
    from harness.protocol import Agreement
    from harness.spec import fastvit_source_hash

    held_out = images.held_out_set(job.spec.resolution)
    labelled = images.labelled_set(job.eval_dir, job.spec.resolution) if job.eval_dir else None
    model_parts = {"spec": job.spec.as_dict(), "weights": job.spec.weights_id(), "fastvit": fastvit_source_hash(),
                   "baseline_init": baselines.INIT}
    backend = BACKENDS[job.target.backend]
    answer_key = cache_key({"artifact": result.artifact_key or model_parts, "target": job.target.name,
                            "precision": job.precision, "threads": job.threads, "versions": backend.versions(),
                            "backend_code": exporter_hash(backend), "host": host_facts(), "held_out": held_out.identity,
                            "eval": labelled[0].identity if labelled else None,
                            "method": inspect.getsource(agreement)})
    kept = Path(job.cache_dir) / "agreement" / f"{answer_key}.json"
    if kept.exists():
        try:
            found = json.loads(kept.read_text())
            result.environment["agreement_reused"] = {"key": answer_key, "measured_at": found["measured_at"]}
            return Agreement(**found["agreement"])
        except (ValueError, KeyError, TypeError):
            kept.unlink(missing_ok=True)  # unreadable: measured again below
    reference = Path(job.cache_dir) / "reference-logits" / f"{cache_key({**model_parts, 'held_out': held_out.identity})}.npy"
    found = agreement.agreement(session, model, held_out, job.spec.batch, labelled, reference_path=reference)
    write_whole(kept, lambda temporary: temporary.write_text(json.dumps({"agreement": asdict(found),
                                                                        "measured_at": time.time()})))
    return found


def check_agreement(result) -> None:
    """A low-precision run that computes its answers too far from fp32 torch's is stored as inaccurate."""
    from harness.protocol import AGREEMENT_FLOOR

    found = result.agreement
    if result.status == "ok" and found is not None and found.cosine < AGREEMENT_FLOOR:
        result.status = "inaccurate"
        result.error = (f"agreement with fp32 torch below the floor: mean logit cosine {found.cosine:.3f} < "
                        f"{AGREEMENT_FLOOR} on {found.images} held-out photographs (top-1 {found.top1:.0%})")


def warm_load(backend, model, artifact, device: str, job, options: dict) -> tuple[float, dict | None]:
    """(ms, the session's compilation) of loading the artifact again in this process, the runtime already
    initialised and the file in the page cache: what an app pays the second time. A runtime with a compiled-model
    cache (OpenVINO) fills it on one load and is timed on the next; torch.compile's cold load filled its cache."""
    options = dict(options)
    if backend.compile_cache and not backend.cache_filled_by_load:
        options["compile_cache"] = Path(artifact).parent.parent / COMPILE_CACHE / Path(artifact).parent.name
        backend.load(module_to_load(backend, model), artifact, device, job.threads, job.precision, **options)
        gc.collect()
    began = time.perf_counter()
    session = backend.load(module_to_load(backend, model), artifact, device, job.threads, job.precision, **options)
    elapsed = (time.perf_counter() - began) * 1e3
    compiled = session.compilation()
    del session
    gc.collect()
    return elapsed, compiled


def measure_peak(job, result) -> None:
    """A runtime's dense GEMM throughput on this host (protocol.PeakJob -> protocol.PeakResult)."""
    import tempfile

    import torch

    from backends import BACKENDS
    from harness.measure.artifacts import gemm_artifact
    from harness.measure.flops import Gemm, gemm_flops
    from harness.measure.timing import measure
    from harness.stats import summarize

    torch.set_num_threads(1)
    torch.manual_seed(0)
    backend, size = BACKENDS[job.target.backend], job.gemm_size
    gemm, example = Gemm(size).eval(), torch.randn(size, size)
    artifact = gemm_artifact(backend, gemm, example, size, Path(job.cache_dir)) if backend.artifact_name else None
    with tempfile.TemporaryDirectory(prefix="harness-compile-") as compile_dir:
        options = load_options(backend, job.target, example, Path(compile_dir))
        session = backend.load(gemm, artifact, job.target.device, job.threads, **options)
    session.prepare(example.numpy())
    samples = measure(session.infer, job.policy).samples_ns
    result.gflops = gemm_flops(size) / (summarize(samples).median_ms / 1e3) / 1e9
    result.samples, result.status = len(samples), "ok"


def take_tool_timing(result, timing) -> None:
    """Fill `result` from a device tool's report (backends.RemoteTiming): a phone's benchmark_model statistics, or
    a farm's profile (every inference time, per-layer times and compute units)."""
    from harness.ingest.logs import from_benchmark_model

    if hasattr(timing.tool_result, "profile"):
        from harness.measure.farm import take_farm_profile

        take_farm_profile(result, timing.tool_result)
        return
    reported = from_benchmark_model(timing.tool_result)
    result.first_ns, result.summary, result.op_profile = reported.first_ns, reported.summary, reported.op_profile
    result.footprint = merged_footprint(result.footprint, reported.footprint)
    result.environment.update(reported.environment, phone=timing.device_facts, tool_output_tail=timing.output_tail)


def merged_footprint(ours, theirs):
    """Our own figures (sizes measured here), and the device tool's where we have none (its load and memory)."""
    from dataclasses import fields

    from harness.protocol import Footprint

    if ours is None or theirs is None:
        return ours or theirs
    return Footprint(**{f.name: getattr(ours, f.name) if getattr(ours, f.name) is not None else getattr(theirs, f.name)
                        for f in fields(Footprint)})


def relative_error(reference, output) -> tuple[float, float]:
    """(max |output - reference|, that divided by max |reference|)."""
    import numpy as np

    max_abs = float(np.abs(reference - output).max())
    return max_abs, max_abs / max(float(np.abs(reference).max()), 1e-12)


def check_parity(result, reference, output, tolerance: float) -> None:
    """Status ok when the runtime's output matches torch's within `tolerance` (relative to its scale)."""
    if output.shape != reference.shape:
        result.status, result.error = "invalid", f"output shape {output.shape} != torch's {reference.shape}"
        return
    result.parity_max_abs, result.parity_rel = relative_error(reference, output)
    if result.parity_rel <= tolerance:
        result.status = "ok"
    else:
        result.status = "invalid"
        result.error = f"output differs from torch: relative error {result.parity_rel:.2e} > tolerance {tolerance:.0e}"


def run_job_file(job_path: Path, result_path: Path, threads: int | None = None) -> None:
    """Measure the job in `job_path` and write its result to `result_path` (renamed into place whole).
    threads: the count this process's math libraries were started with, which a job must match."""
    from harness.protocol import PeakJob, PeakResult, RunResult, job_from_json

    result = RunResult(status="error", started_at=time.time())
    try:
        job = job_from_json(job_path.read_text())
        if threads is not None and job.threads != threads:
            raise ValueError(f"this worker's thread pools were sized for {threads} threads, the job asks {job.threads}")
        if isinstance(job, PeakJob):
            result = PeakResult(status="error")
            measure_peak(job, result)
        else:
            measure_job(job, result)
    except Exception as exc:  # reported as a failed run, with the traceback kept for the record
        result.status, result.error = "error", f"{type(exc).__name__}: {exc}"
        result.log = traceback.format_exc(limit=8)
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(result.to_json())
    tmp.replace(result_path)


def set_threads(threads: int) -> None:
    """Math libraries size their thread pools once, when they load: call before any import of them."""
    from harness.measure.environment import thread_environment

    os.environ.update(thread_environment(threads))


def serve(threads: int) -> int:
    """Run the jobs named on stdin, one per line, in this process; answer "done" after each."""
    from harness.measure import footprint  # light: no math library loads before set_threads

    set_threads(threads)
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # runtimes that print (C code included) go to stderr
    for line in sys.stdin:
        job_path, _, result_path = line.rstrip("\n").partition("\t")
        run_job_file(Path(job_path), Path(result_path), threads)
        # The job's session and model go now, not during the next job's timing, and the heap's free pages
        # go back to the OS: a kept worker that ran a large model timed the next one up to 1.19x slower
        # than a fresh process until it did (see README, "How a sweep runs its jobs").
        footprint.release_freed()
        # What is alive now lives as long as the worker (torch's and the runtime's modules, 0.3-0.5 M objects):
        # kept out of later collections, which then scan one job's objects (0.15-0.35 s a job before).
        gc.freeze()
        reply.write("done\n")
        reply.flush()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--serve" and argv[1].isdigit():
        return serve(int(argv[1]))
    if len(argv) != 2:
        print("usage: python -m harness.measure.worker JOB.json RESULT.json\n"
              "       python -m harness.measure.worker --serve THREADS", file=sys.stderr)
        return 2
    job_path, result_path = Path(argv[0]), Path(argv[1])
    try:
        set_threads(int(json.loads(job_path.read_text())["threads"]))
    except (ValueError, KeyError, TypeError):
        pass  # an unreadable job is reported by run_job_file
    run_job_file(job_path, result_path)
    return 0


def exit_now(code: int) -> None:
    """End the process once its results are written, without the interpreter's teardown: clearing torch's and a
    runtime's modules took 0.8-1.8 s per worker (the parent waits for a worker to end before it starts the next, so
    two never overlap in memory), 0.06-0.16 s like this. The exit handlers still run (a runtime's thread pools,
    torch.compile's compile workers)."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
