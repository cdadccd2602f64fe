"""Runs each job in a child process and turns any way it can end into a result dict."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKER = [sys.executable, "-m", "harness.worker"]  # followed by JOB.json RESULT.json


def child_environment(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_in_child(job: dict, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="harness-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        try:
            proc = subprocess.run([*WORKER, str(job_path), str(result_path)],
                                  env=child_environment(job["threads"]), capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"status": "crashed", "error": f"timed out after {timeout_s:.0f} s"}
        if result_path.exists():
            return json.loads(result_path.read_text())
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            return {"status": "crashed", "error": f"worker died with {name}", "stderr": proc.stderr[-2000:]}
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "crashed", "error": f"worker exited with code {proc.returncode}: {tail}",
                "stderr": proc.stderr[-2000:]}
