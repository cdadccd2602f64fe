"""A job in a child process (harness.measure.worker), and every way that process can end turned into
a result: a worker that segfaults, aborts or hangs becomes a `crashed` run with its stderr tail,
and the sweep goes on. A job that did not end ok keeps its job file, to be reproduced by hand."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backends import BACKENDS

from ..protocol import Job, PeakJob, PeakResult, ProtocolError, RunResult, job_to_json
from . import environment

REPO = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "harness.measure.worker"]  # followed by JOB.json RESULT.json
STDERR_TAIL = 4000  # characters of a failed worker's stderr kept in the run's log
FAILED_JOBS = "failed-jobs"  # kept under the job's cache directory


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def reproduce_command(job_file: Path) -> str:
    return f"python -m harness.measure.worker {job_file} result.json"


def _keep_job_file(job: Job | PeakJob, text: str) -> Path:
    folder = Path(job.cache_dir) / FAILED_JOBS
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", job.describe()).strip("-")
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{slug}.json"
    path.write_text(text)
    return path


def _crashed(job: Job | PeakJob, error: str) -> RunResult | PeakResult:
    if isinstance(job, PeakJob):
        return PeakResult(status="crashed", error=error)
    # the worker reported nothing: record what the controller knows of the run's circumstances
    facts = environment.run_facts(job.threads, BACKENDS[job.target.backend].versions())
    return RunResult(status="crashed", error=error, environment={**facts, "recorded_by": "controller"})


def measure_in_child(job: Job | PeakJob, timeout_s: float) -> RunResult | PeakResult:
    """Run `job` in a fresh worker process and return its result, whatever happened to the process."""
    result_type = PeakResult if isinstance(job, PeakJob) else RunResult
    text = job_to_json(job)
    with tempfile.TemporaryDirectory(prefix="harness-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(text)
        try:
            proc = subprocess.run([*WORKER, str(job_path), str(result_path)], env=_child_environment(),
                                  capture_output=True, text=True, timeout=timeout_s)
            stderr = proc.stderr
        except subprocess.TimeoutExpired as exc:  # the child was killed
            proc, stderr = None, exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        if proc is None:
            result = _crashed(job, f"timed out after {timeout_s:.0f} s")
        elif result_path.exists():
            try:
                result = result_type.from_json(result_path.read_text())
            except ProtocolError as exc:
                result = _crashed(job, f"the worker's result cannot be read: {exc}")
        elif proc.returncode < 0:
            result = _crashed(job, f"worker died with {signal.Signals(-proc.returncode).name}")
        else:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            result = _crashed(job, f"worker exited with code {proc.returncode}: {last}")
    if result.status != "ok":
        kept = _keep_job_file(job, text)
        parts = [f"job file kept: {kept}\nreproduce with: {reproduce_command(kept)}", result.log]
        if result.status == "crashed" and stderr:
            parts.append(f"worker stderr (last {STDERR_TAIL} characters):\n{stderr[-STDERR_TAIL:]}")
        result.log = "\n".join(p for p in parts if p)
    return result
