"""LiteRT's `benchmark_model` tool: its command line, and parsing of what it prints.

One run of the tool prints (TF Lite 1.12 of 2019 to LiteRT 2.x, optionally prefixed "INFO: "):

    Initialized session in 112.345ms.
    Running benchmark for at least 1 iterations and at least 0.5 seconds ...
    count=41 first=15673 curr=11853 min=11766 max=15673 avg=12203.4 std=652     <- warm-up
    Running benchmark for at least 50 iterations and at least 1 seconds ...
    count=84 first=11873 curr=11845 min=11701 max=12593 avg=11878.3 std=142     <- timed
    Inference timings in us: Init: 112345, First inference: 15673, Warmup (avg): 12203.4, Inference (avg): 11878.3

Variants seen in real logs (tests/fixtures/SOURCES.md): a one-iteration warm-up prints only
`count=1 curr=N`; builds from 2023 on add `p5=... median=... p95=...`; numbers may be in scientific
notation (`avg=2.95034e+06`); 2019 builds end with `Average inference timings in us: Warmup: W,
Init: I, no stats: A`; op-profiling tables of TF <= 2.9 have a `[start]` column. All times in
`count=` lines are microseconds. The tool prints statistics, not per-iteration samples.
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
    """One `count=` line, microseconds. A one-iteration warm-up has only count and curr (= first)."""
    count: int
    first_us: float
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    median_us: float | None = None  # builds from 2023 on
    p95_us: float | None = None


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
    # "Memory footprint delta from the start of the tool (MB): init=6.36 overall=109.8", printed before that as
    # "Peak memory footprint (MB): init=0 overall=15.3438" (TF 2.x): the same numbers, max RSS less the tool's at
    # its start (benchmark_model.cc: GetMemoryUsage() - start_mem_usage), after initialization and over the run
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    model_file_mb: float | None = None  # "The input model file size (MB): 16.05"


NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
# any prefix a log adds ("INFO: ", Android logcat's "I tflite  : ") before count=
STATS = re.compile(rf"(?:^|\s)count=(\d+)((?: \w+={NUMBER})*)\s*$")
PROFILE_SUMMARY = ("Timings (microseconds)", "Memory (bytes)")  # the op profile's own count= lines
STAT_FIELD = re.compile(rf"(\w+)=({NUMBER})")
INIT = re.compile(rf"Initialized session in ({NUMBER}) ?ms")
MEMORY = re.compile(rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
                    rf"init=({NUMBER}) overall=({NUMBER})")
MODEL_FILE = re.compile(rf"The input model file size \(MB\): ({NUMBER})")
# the closing summary: the average of the timed runs is its last number, in both layouts
FINAL = re.compile(rf"Inference timings in us: Init: {NUMBER}, First inference: {NUMBER}, "
                   rf"Warmup \(avg\): {NUMBER}, Inference \(avg\): ({NUMBER})")
FINAL_2019 = re.compile(rf"Average inference timings in us: Warmup: {NUMBER}, Init: {NUMBER}, no stats: ({NUMBER})")
# what the tool says about delegation: "...completely/partially executed by the delegate", and for
# the GPU delegate "86 operations will run on the GPU, and the remaining 22 ... on the CPU"
DELEGATE = re.compile(r"(Explicitly applied .*delegate.*|.*operations will run on the .*)")
FAILURES = ("Benchmarking failed", "Failed to apply", "Failed to allocate", "Failed to invoke",
            "Didn't find op for builtin opcode", "Failed to construct interpreter", "Aborted", "Segmentation fault")
OP_SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs:"


def parse_benchmark_model(text: str) -> BenchmarkModelResult:
    """Parse one run of benchmark_model; ToolOutputError names the line that failed."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    for line in lines:
        if any(marker in line for marker in FAILURES):
            raise ToolOutputError(f"benchmark_model failed: {line.strip()}")
    stats = [m for line in lines if not any(p in line for p in PROFILE_SUMMARY) and (m := STATS.search(line))]
    init = next((float(m.group(1)) for m in map(INIT.search, lines) if m), None)
    final = next((m for line in lines for m in (FINAL.search(line), FINAL_2019.search(line)) if m), None)
    if init is None or len(stats) < 2 or final is None:
        last = next((line.strip() for line in reversed(lines) if line.strip()), "<empty output>")
        missing = ("'Initialized session in ...'" if init is None else
                   "the warm-up and timed 'count=...' lines" if len(stats) < 2 else
                   "the summary 'Inference timings in us: ...' (or the 2019 'Average inference timings in us: ...')")
        raise ToolOutputError(f"benchmark_model output is incomplete (missing {missing}); last line: {last!r}")
    warmup, timed = (_stats(m) for m in stats[:2])
    if timed.avg_us is None:
        raise ToolOutputError(f"the timed 'count=' line has no avg=: {stats[1].group(0)!r}")
    if abs(timed.avg_us - float(final.group(1))) > 0.01 * timed.avg_us:
        raise ToolOutputError(f"timed statistics disagree with the summary line: {final.group(0)!r}")
    note = " ".join(m.group(0).strip() for m in map(DELEGATE.search, lines) if m) or None
    memory = next((m for m in map(MEMORY.search, lines) if m), None)
    model_file = next((float(m.group(1)) for m in map(MODEL_FILE.search, lines) if m), None)
    return BenchmarkModelResult(init_ms=init, warmup=warmup, timed=timed, delegate_note=note, ops=_op_rows(lines),
                                memory_init_mb=float(memory.group(1)) if memory else None,
                                memory_overall_mb=float(memory.group(2)) if memory else None,
                                model_file_mb=model_file)


def _stats(match: re.Match) -> Stats:
    fields = {key: float(value) for key, value in STAT_FIELD.findall(match.group(2))}
    first = fields.get("first", fields.get("curr"))  # count=1: its one value is the first
    if first is None:
        raise ToolOutputError(f"a 'count=' line with neither first= nor curr=: {match.group(0)!r}")
    return Stats(int(match.group(1)), first, fields.get("min"), fields.get("max"), fields.get("avg"),
                 fields.get("std"), fields.get("median"), fields.get("p95"))


def _op_rows(lines: list[str]) -> list[OpRow]:
    """Rows of the 'Run Order' table of the regular-runs profile (not the initialization one),
    read by the table's own header, whichever columns (`[start]` or not) it has."""
    try:
        start = lines.index(next(line for line in lines if line.strip().endswith(OP_SECTION)))
    except StopIteration:
        return []
    rows, header = [], None
    for line in lines[start + 1:]:
        if "Top by Computation Time" in line or "Summary by node type" in line:
            break
        cells = [cell.strip() for cell in line.strip().split("\t")]
        if "[node type]" in line:
            header = [cell.strip("[]").lower() for cell in cells]
            continue
        if header is None or len(cells) != len(header):
            continue
        row = dict(zip(header, cells))
        try:
            rows.append(OpRow(row["node type"], float(row["first"]), float(row["avg ms"]),
                              float(row["%"].rstrip("%")), int(row["times called"]), row["name"]))
        except (KeyError, ValueError):
            continue
    return rows
