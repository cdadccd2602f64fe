"""A job in a child process (harness.measure.worker), and every way that process can end turned into
a result: a worker that segfaults, aborts or hangs becomes a `crashed` run with its stderr tail,
and the sweep goes on. A job that did not end ok keeps its job file, to be reproduced by hand.
A fresh process per job (every `harness run`), or one kept process for many small jobs of one
target (`harness layers`), measured the same way."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
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


def _ended(job: Job | PeakJob, result_path: Path, returncode: int | None, last_line: str,
           timeout_s: float) -> RunResult | PeakResult:
    """The result of a job whose worker stopped answering: the result file it wrote, or why it wrote none
    (returncode None: it was killed after `timeout_s`)."""
    result_type = PeakResult if isinstance(job, PeakJob) else RunResult
    if result_path.exists():
        try:
            return result_type.from_json(result_path.read_text())
        except ProtocolError as exc:
            return _crashed(job, f"the worker's result cannot be read: {exc}")
    if returncode is None:
        return _crashed(job, f"timed out after {timeout_s:.0f} s")
    if returncode < 0:
        return _crashed(job, f"worker died with {signal.Signals(-returncode).name}")
    return _crashed(job, f"worker exited with code {returncode}: {last_line or 'no output'}")


def _kept(job: Job | PeakJob, text: str, result: RunResult | PeakResult, stderr: str) -> RunResult | PeakResult:
    """A job that did not end ok keeps its job file; its log says how to reproduce it (and, when the worker
    crashed, what it printed last)."""
    if result.status != "ok":
        kept = _keep_job_file(job, text)
        parts = [f"job file kept: {kept}\nreproduce with: {reproduce_command(kept)}", result.log]
        if result.status == "crashed" and stderr:
            parts.append(f"worker stderr (last {STDERR_TAIL} characters):\n{stderr[-STDERR_TAIL:]}")
        result.log = "\n".join(p for p in parts if p)
    return result


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


def measure_in_child(job: Job | PeakJob, timeout_s: float) -> RunResult | PeakResult:
    """Run `job` in a fresh worker process and return its result, whatever happened to the process."""
    text = job_to_json(job)
    with tempfile.TemporaryDirectory(prefix="harness-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(text)
        try:
            proc = subprocess.run([*WORKER, str(job_path), str(result_path)], env=_child_environment(),
                                  capture_output=True, text=True, timeout=timeout_s)
            returncode, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:  # the child was killed
            returncode = None
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        result = _ended(job, result_path, returncode, _last_line(stderr), timeout_s)
    return _kept(job, text, result, stderr)


class KeptWorker:
    """One worker process (`worker --serve`) that runs job after job, so torch and the runtime are imported
    once for many small jobs (`harness layers`: every layer of a model on one target). Each job is measured
    exactly as in a fresh process; a job whose process dies or hangs is `crashed` with that process's
    output, and the next job starts a new process."""

    def __init__(self, threads: int):
        self.threads = threads
        self.proc: subprocess.Popen | None = None
        self.output = None  # the process's stdout-as-stderr and stderr, in a file (never a pipe that can fill)
        self.replies: queue.Queue = queue.Queue()

    def _start(self) -> None:
        if self.output is not None:
            self.output.close()
        self.output = tempfile.TemporaryFile()
        self.replies = queue.Queue()
        self.proc = subprocess.Popen([*WORKER, "--serve", str(self.threads)], env=_child_environment(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.output, text=True)
        threading.Thread(target=_forward_lines, args=(self.proc.stdout, self.replies), daemon=True).start()

    def _output_since(self, offset: int) -> str:
        self.output.seek(offset)
        return self.output.read().decode(errors="replace")

    def measure(self, job: Job | PeakJob, timeout_s: float) -> RunResult | PeakResult:
        if job.threads != self.threads:
            raise ValueError(f"a worker kept for {self.threads} threads cannot run a job of {job.threads}")
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        text = job_to_json(job)
        offset = os.fstat(self.output.fileno()).st_size
        with tempfile.TemporaryDirectory(prefix="harness-job-") as tmp:
            job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
            job_path.write_text(text)
            try:
                self.proc.stdin.write(f"{job_path}\t{result_path}\n")
                self.proc.stdin.flush()
                reply = self.replies.get(timeout=timeout_s)
            except (BrokenPipeError, OSError):
                reply = None  # it died between jobs
            except queue.Empty:
                reply = "timeout"
                self._stop(kill=True)
            if reply != "done":
                if reply is None:
                    self.proc.wait()
                returncode = None if reply == "timeout" else self.proc.returncode
                output = self._output_since(offset)
                result = _ended(job, result_path, returncode, _last_line(output), timeout_s)
                self.proc = None  # the next job starts a fresh process
                return _kept(job, text, result, output)
            result = _ended(job, result_path, 0, "", timeout_s)
        return _kept(job, text, result, self._output_since(offset))

    def _stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            try:
                self.proc.stdin.close()  # the worker's loop ends at end of input
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self._stop()
        self.proc = None
        if self.output is not None:
            self.output.close()
            self.output = None


def exported_a_model(job: Job, result: RunResult) -> bool:
    """Did the job export a whole model (its artifact was not in the cache)? A layer alone is small."""
    return not job.layer and (result.environment or {}).get("artifact_cached") is False


def _forward_lines(stream, lines: queue.Queue) -> None:
    """Each line the worker answers, then None when it closes its output (it ended)."""
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


class WorkerPerTarget:
    """Measures jobs in one kept worker per (target, threads), the previous one closed when the target
    changes: a sweep ordered by target (harness layers, and each round of harness run) has one worker process
    alive at a time; `new_round` closes it, so the next round's jobs run in new processes, and so does a job that
    exported a model (exported_a_model)."""

    def __init__(self):
        self.key: tuple | None = None
        self.worker: KeptWorker | None = None

    def __call__(self, job: Job, timeout_s: float) -> RunResult:
        key = (job.target, job.threads)
        if key != self.key:
            self.close()
            self.key, self.worker = key, KeptWorker(job.threads)
        result = self.worker.measure(job, timeout_s)
        if exported_a_model(job, result):
            # An export (torch.export, a converter, a quantizer) leaves the largest heap a worker ever holds: the
            # next models would be timed beside it and the next export would add to it (a cold sweep of kept
            # workers peaked 0.6 GB above fresh processes). The next job starts a new worker.
            self.close()
        return result

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
        self.key, self.worker = None, None

    new_round = close

    def __enter__(self) -> WorkerPerTarget:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
