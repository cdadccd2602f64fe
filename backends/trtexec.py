"""Parsing NVIDIA's `trtexec`: its performance summary, and the per-iteration `--exportTimes` JSON.

    [I] GPU Compute Time: min = 1.1875 ms, max = 1.52344 ms, mean = 1.21484 ms, median = 1.21094 ms,
        percentile(90%) = 1.22656 ms, percentile(95%) = 1.23438 ms, percentile(99%) = 1.28906 ms
    &&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --onnx=model.onnx --fp16

"GPU Compute Time" is what our TensorRT target measures (CUDA events around execution on device
buffers); "Latency" adds host<->device copies and is kept as extra information only.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .benchmark_model import ToolOutputError

STAT = r"([\w ]+?): min = ([\d.]+) ms, max = ([\d.]+) ms, mean = ([\d.]+) ms, median = ([\d.]+) ms, " \
       r"percentile\(90%\) = ([\d.]+) ms, percentile\(95%\) = ([\d.]+) ms, percentile\(99%\) = ([\d.]+) ms"


@dataclass
class TrtStats:
    min_ms: float
    max_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float


@dataclass
class TrtexecResult:
    gpu_compute: TrtStats
    latency: TrtStats | None
    command: str | None
    samples_ms: list[float] = field(default_factory=list)  # from --exportTimes, when given


def parse_trtexec_log(text: str) -> TrtexecResult:
    lines = text.splitlines()
    failed = next((l for l in lines if "&&&& FAILED" in l), None)
    if failed:
        error = next((l for l in lines if "[E]" in l), failed)
        raise ToolOutputError(f"trtexec failed: {error.strip()}")
    stats = {}
    for line in lines:
        match = re.search(STAT, line)
        if match:
            stats[match.group(1).strip()] = TrtStats(*map(float, match.groups()[1:]))
    if "GPU Compute Time" not in stats:
        last = next((l.strip() for l in reversed(lines) if l.strip()), "<empty output>")
        raise ToolOutputError(f"trtexec output has no 'GPU Compute Time' summary (truncated?); last line: {last!r}")
    passed = next((l for l in lines if "&&&& PASSED" in l), None)
    command = passed.split("#", 1)[1].strip() if passed and "#" in passed else None
    return TrtexecResult(gpu_compute=stats["GPU Compute Time"], latency=stats.get("Latency"), command=command)


def parse_export_times(text: str) -> list[float]:
    """Per-iteration GPU compute times (ms) from `trtexec --exportTimes=FILE`."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        line = text.splitlines()[exc.lineno - 1] if text.splitlines() else ""
        raise ToolOutputError(f"not valid --exportTimes JSON at line {exc.lineno}: {line.strip()!r}") from exc
    if not isinstance(records, list) or not records:
        raise ToolOutputError("--exportTimes JSON must be a non-empty list of iterations")
    samples = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "computeMs" not in record:
            raise ToolOutputError(f"--exportTimes iteration {i} has no computeMs: {str(record)[:120]!r}")
        samples.append(float(record["computeMs"]))
    return samples
