"""Runs measured elsewhere, by a vendor tool we cannot drive here, stored beside ours as `imported`.

Each importer turns a tool's output into a run result (as the worker returns) and a summary.
Statistics a tool does not report stay NULL; per-iteration samples are stored when the tool
gives them (trtexec --exportTimes).
"""
from __future__ import annotations

import re
from pathlib import Path

from backends.benchmark_app import parse_benchmark_app
from backends.benchmark_model import BenchmarkModelResult, ToolOutputError, parse_benchmark_model
from backends.trtexec import parse_export_times, parse_trtexec_log

from .opclass import xnnpack_class
from .stats import summarize

# tool -> the backend whose numbers it produces
TOOL_BACKENDS = {"benchmark_model": "litert", "trtexec": "tensorrt", "benchmark_app": "openvino", "manual": None}
DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\- ]{0,63}$")


def import_result(tool: str, text: str | None, *, latency_ms: float | None = None, note: str | None = None,
                  export_times: str | None = None) -> tuple[dict, dict]:
    """(run result, summary) from a tool's output; ToolOutputError when it cannot be read."""
    result = {"status": "ok", "imported": True, "environment_extra": {"tool": tool, "note": note}}
    if tool == "benchmark_model":
        partial, summary = from_benchmark_model(parse_benchmark_model(text))
        result["environment_extra"].update(partial.pop("environment_extra"))
        result.update(partial)
    elif tool == "trtexec":
        parsed = parse_trtexec_log(text)
        g = parsed.gpu_compute
        result["environment_extra"].update(command=parsed.command, timing="trtexec GPU Compute Time",
                                           latency_with_copies_median_ms=parsed.latency.median_ms
                                           if parsed.latency else None)
        if export_times is not None:
            samples = parse_export_times(export_times)
            result["samples_ns"] = [int(ms * 1e6) for ms in samples]
            return result, summarize(result["samples_ns"]).as_dict()
        summary = {"min_ms": g.min_ms, "median_ms": g.median_ms, "mean_ms": g.mean_ms, "p90_ms": g.p90_ms,
                   "p95_ms": g.p95_ms, "p99_ms": g.p99_ms, "max_ms": g.max_ms}
    elif tool == "benchmark_app":
        parsed = parse_benchmark_app(text)
        summary = {"count": parsed.count, "min_ms": parsed.min_ms, "median_ms": parsed.median_ms,
                   "mean_ms": parsed.mean_ms, "max_ms": parsed.max_ms}
        if parsed.first_ms is not None:
            result["first_ns"] = int(parsed.first_ms * 1e6)
    elif tool == "manual":
        if latency_ms is None or not latency_ms > 0:
            raise ToolOutputError("--tool manual needs --latency-ms, the median latency read off the tool")
        summary = {"median_ms": latency_ms}
    else:
        raise ToolOutputError(f"unknown tool {tool!r}; choose one of: {', '.join(TOOL_BACKENDS)}")
    return result, summary


def from_benchmark_model(parsed: BenchmarkModelResult) -> tuple[dict, dict]:
    """(partial run result, summary) from benchmark_model's statistics and op table."""
    t = parsed.timed
    summary = {"count": t.count, "min_ms": t.min_us / 1e3, "mean_ms": t.avg_us / 1e3, "max_ms": t.max_us / 1e3,
               "std_ms": t.std_us / 1e3, "cv": t.std_us / t.avg_us if t.avg_us else None}
    # the tool's [avg ms] is per inference, all calls of that row together
    ops = [{"op_name": o.name, "op_type": o.node_type, "op_class": xnnpack_class(o.node_type), "calls": o.calls,
            "total_ms": o.avg_ms} for o in parsed.ops]
    extra = {"tool": "benchmark_model", "init_ms": parsed.init_ms, "delegate_note": parsed.delegate_note}
    return {"first_ns": int(parsed.warmup.first_us * 1e3), "op_profile": ops, "environment_extra": extra}, summary


def read_log(path: Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as exc:
        raise ToolOutputError(f"cannot read {path}: {exc.strerror}") from exc


def imported_host(device: str) -> dict:
    """Imported runs belong to the device that produced them, not to this machine."""
    return {"hostname": f"imported:{device}", "cpu_model": device, "logical_cores": None, "os": "unknown",
            "machine": "unknown"}
