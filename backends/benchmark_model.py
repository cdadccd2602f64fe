"""LiteRT's `benchmark_model` tool: its command line, and parsing of what it prints.

The output format parsed here (one run of the tool):

    Initialized session in 112.345ms.
    Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
    count=41 first=15673 curr=11853 min=11766 max=15673 avg=12203.4 std=652
    Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
    count=84 first=11873 curr=11845 min=11701 max=12593 avg=11878.3 std=142
    Inference timings in us: Init: 112345, First inference: 15673, Warmup (avg): 12203.4, Inference (avg): 11878.3

All times the tool prints in `count=` lines are microseconds. With --enable_op_profiling=true it
adds tables ("Operator-wise Profiling Info for Regular Benchmark Runs:" then "Run Order" rows).
The tool prints statistics, not per-iteration samples.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

DELEGATES = ("xnnpack", "gpu", "nnapi", "none")


class ToolOutputError(ValueError):
    """The tool's output is truncated, failed, or not in the expected format."""


def benchmark_model_args(binary: str, model: str, *, threads: int, delegate: str, warmup_runs: int,
                         warmup_seconds: float, num_runs: int, min_seconds: float, op_profiling: bool) -> list[str]:
    """The tool's argument list (never a shell string)."""
    if delegate not in DELEGATES:
        raise ValueError(f"unknown delegate {delegate!r}; choose one of: {', '.join(DELEGATES)}")
    args = [binary, f"--graph={model}", f"--num_threads={threads}",
            f"--warmup_runs={warmup_runs}", f"--warmup_min_secs={warmup_seconds:g}",
            f"--num_runs={num_runs}", f"--min_secs={min_seconds:g}",
            f"--enable_op_profiling={'true' if op_profiling else 'false'}"]
    args.append(f"--use_xnnpack={'true' if delegate == 'xnnpack' else 'false'}")
    if delegate == "gpu":
        args.append("--use_gpu=true")
    elif delegate == "nnapi":
        args.append("--use_nnapi=true")
    return args


@dataclass
class Stats:
    count: int
    first_us: float
    min_us: float
    max_us: float
    avg_us: float
    std_us: float


@dataclass
class OpRow:
    node_type: str
    first_ms: float
    avg_ms: float
    percent: float
    calls: int
    name: str


@dataclass
class BenchmarkModelResult:
    init_ms: float
    warmup: Stats
    timed: Stats
    delegate_note: str | None = None  # how much of the graph the delegate took, as the tool said
    ops: list[OpRow] = field(default_factory=list)


STATS = re.compile(r"count=(\d+) first=([\d.]+) curr=[\d.]+ min=([\d.]+) max=([\d.]+) avg=([\d.]+) std=([\d.]+)")
INIT = re.compile(r"Initialized session in ([\d.]+)ms")
FINAL = re.compile(r"Inference timings in us: Init: [\d.]+, First inference: [\d.]+, "
                   r"Warmup \(avg\): [\d.]+, Inference \(avg\): ([\d.]+)")
# what the tool says about delegation: "...completely/partially executed by the delegate", and for
# the GPU delegate "86 operations will run on the GPU, and the remaining 22 ... on the CPU"
DELEGATE = re.compile(r"(Explicitly applied .*delegate.*|.*operations will run on the .*)")
FAILURES = ("Benchmarking failed", "Failed to apply", "Failed to allocate", "Failed to invoke",
            "Didn't find op for builtin opcode", "Failed to construct interpreter", "Aborted", "Segmentation fault")
OP_SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs:"
OP_ROW = re.compile(r"^\s*(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+[\d.]+%\s+[\d.]+\s+(\d+)\s+(.*)$")


def parse_benchmark_model(text: str) -> BenchmarkModelResult:
    """Parse one run of benchmark_model; ToolOutputError names the line that failed."""
    lines = text.splitlines()
    for line in lines:
        if any(marker in line for marker in FAILURES):
            raise ToolOutputError(f"benchmark_model failed: {line.strip()}")
    stats = [m for m in map(STATS.search, lines) if m]
    # the op-profiling summary repeats a count= line prefixed "Timings (microseconds):"; skip those
    stats = [m for m in stats if "Timings (microseconds)" not in m.string and "Memory" not in m.string]
    init = next((float(m.group(1)) for m in map(INIT.search, lines) if m), None)
    final = next((m for m in map(FINAL.search, lines) if m), None)
    if init is None or len(stats) < 2 or final is None:
        last = next((l.strip() for l in reversed(lines) if l.strip()), "<empty output>")
        missing = ("'Initialized session in ...'" if init is None else
                   "the warm-up and timed 'count=...' lines" if len(stats) < 2 else "'Inference timings in us: ...'")
        raise ToolOutputError(f"benchmark_model output is incomplete (missing {missing}); last line: {last!r}")
    warmup, timed = (_stats(m) for m in stats[:2])
    if abs(timed.avg_us - float(final.group(1))) > 0.01 * timed.avg_us:
        raise ToolOutputError(f"timed statistics disagree with the summary line: {final.group(0)!r}")
    note = " ".join(m.group(0).strip() for m in map(DELEGATE.search, lines) if m) or None
    return BenchmarkModelResult(init_ms=init, warmup=warmup, timed=timed, delegate_note=note,
                                ops=_op_rows(lines))


def _stats(match: re.Match) -> Stats:
    count, first, low, high, avg, std = match.groups()
    return Stats(int(count), float(first), float(low), float(high), float(avg), float(std))


def _op_rows(lines: list[str]) -> list[OpRow]:
    """Rows of the 'Run Order' table of the regular-runs profile (not the initialization one)."""
    try:
        start = lines.index(next(l for l in lines if l.strip() == OP_SECTION))
    except StopIteration:
        return []
    rows = []
    for line in lines[start + 1:]:
        if "Top by Computation Time" in line or "Summary by node type" in line:
            break
        if "[node type]" in line or set(line.strip()) <= set("=") or "Run Order" in line:
            continue
        m = OP_ROW.match(line)
        if m:
            node_type, first, avg, pct, calls, name = m.groups()
            rows.append(OpRow(node_type.strip(), float(first), float(avg), float(pct), int(calls), name.strip()))
    return rows
