"""Parsing what OpenVINO's `benchmark_app` prints at the end of a run.

    [ INFO ] Count:            444 iterations
    [ INFO ] Duration:         2003.67 ms
    [ INFO ] Latency:
    [ INFO ]    Median:        4.39 ms
    [ INFO ]    Average:       4.49 ms
    [ INFO ]    Min:           4.21 ms
    [ INFO ]    Max:           18.92 ms
    [ INFO ] Throughput:   221.59 FPS
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .benchmark_model import ToolOutputError

FIELDS = {"count": r"Count:\s+(\d+) iterations", "median_ms": r"Median:\s+([\d.]+) ms",
          "mean_ms": r"Average:\s+([\d.]+) ms", "min_ms": r"Min:\s+([\d.]+) ms", "max_ms": r"Max:\s+([\d.]+) ms",
          "first_ms": r"First inference took ([\d.]+) ms"}


@dataclass
class BenchmarkAppResult:
    count: int
    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    first_ms: float | None


def parse_benchmark_app(text: str) -> BenchmarkAppResult:
    if "[ ERROR ]" in text:
        line = next(l for l in text.splitlines() if "[ ERROR ]" in l)
        raise ToolOutputError(f"benchmark_app failed: {line.strip()}")
    found = {}
    for name, pattern in FIELDS.items():
        match = re.search(pattern, text)
        if match:
            found[name] = float(match.group(1))
    missing = [n for n in FIELDS if n not in found and n != "first_ms"]
    if missing:
        last = next((l.strip() for l in reversed(text.splitlines()) if l.strip()), "<empty output>")
        raise ToolOutputError(f"benchmark_app output has no {missing[0]} line (truncated?); last line: {last!r}")
    return BenchmarkAppResult(count=int(found["count"]), median_ms=found["median_ms"], mean_ms=found["mean_ms"],
                              min_ms=found["min_ms"], max_ms=found["max_ms"], first_ms=found.get("first_ms"))
