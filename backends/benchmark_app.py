"""Parsing what OpenVINO's `benchmark_app` prints at the end of a run (C++ and Python, 2020 on).

    [Step 10/11] Measuring performance (Start inference synchronously, limits: 200 iterations)
    [ INFO ] First inference took 7.13 ms
    [ INFO ] Count:            444 iterations
    [ INFO ] Latency:
    [ INFO ]    Median:        4.39 ms
    [ INFO ]    Average:       4.49 ms
    [ INFO ]    Min:           4.21 ms
    [ INFO ]    Max:           18.92 ms

Layouts seen in real logs (tests/fixtures/SOURCES.md): 2020-2021 builds print one `Latency: X ms`
line (the median); 2022 C++ builds label the mean `Avg:`; `-latency_percentile N` replaces the
median by `N percentile:`; sub-millisecond values may be printed in `us`; a dynamic-shape run
adds one block per data shape group after "Latency for each data shape group:". The measuring
line says whether requests ran synchronously or several at once (throughput mode).

2022 and later builds also say what ran: `Model batch size: 1`, each input as compiled
(`x (node: x) : u8 / [N,C,H,W] / [1,3,256,256]`, the last such block), and the plugin's
`INFERENCE_PRECISION_HINT: <Type: 'float32'>` (f32, f16 or bf16 compute).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .benchmark_model import ToolOutputError

NUMBER = r"\d+(?:\.\d*)?"
VALUE = rf"({NUMBER})\s*(ms|us)"
FIELDS = {  # name -> pattern over one line, anchored after the optional "[ INFO ]"
    "count": re.compile(r"Count:\s+(\d+) iterations"),
    "median": re.compile(rf"^\s*Median:?\s+{VALUE}"),
    "mean": re.compile(rf"^\s*(?:Average|Avg):\s+{VALUE}"),
    "min": re.compile(rf"^\s*Min:\s+{VALUE}"),
    "max": re.compile(rf"^\s*Max:\s+{VALUE}"),
    "percentile": re.compile(rf"^\s*(\d+) percentile:\s+{VALUE}"),
    "one_latency": re.compile(rf"^\s*Latency:\s+{VALUE}"),  # 2020-2021: the median on one line
    "first": re.compile(rf"First inference took {VALUE}"),
}
MEASURING = re.compile(r"Measuring (?:model )?performance \((.*)\)")
BATCH = re.compile(r"Model batch size: (\d+)")
MODEL_INPUT = re.compile(r"^\s+\S+ \(node: .*\) : \w+ / \[([A-Z?.,]*)\] / \[([\d,]+)\]")
PRECISION_HINT = re.compile(r"INFERENCE_PRECISION_HINT: <Type: '(\w+)'>")
READ_MODEL = re.compile(rf"Read model took {VALUE}")
COMPILE_MODEL = re.compile(rf"Compile model took {VALUE}")
COMPILE_RAM = re.compile(r"Compile model ram used (\d+) KB")
COMPILE_PEAK = re.compile(r"(Start|End) of compilation memory usage: Peak (\d+) KB")
HINT_PRECISIONS = {"float32": "fp32", "f32": "fp32", "float16": "fp16", "f16": "fp16", "bf16": "bf16"}
GROUPS = "Latency for each data shape group"


@dataclass
class BenchmarkAppResult:
    count: int
    median_ms: float | None
    mean_ms: float | None
    min_ms: float | None
    max_ms: float | None
    first_ms: float | None
    p99_ms: float | None = None  # with -latency_percentile 99
    api: str | None = None  # "sync" or "async"
    requests: int | None = None  # inference requests in flight
    streams: int | None = None
    batch: int | None = None  # "Model batch size: N"
    input_layout: str | None = None  # e.g. "N,C,H,W" of the (last printed) model input
    input_shape: tuple[int, ...] | None = None
    precision: str | None = None  # what INFERENCE_PRECISION_HINT says the plugin computes in
    read_ms: float | None = None  # "Read model took X ms"
    compile_ms: float | None = None  # "Compile model took X ms"
    compile_ram_mb: float | None = None  # "Compile model ram used N KB": the model's memory after compiling
    peak_before_mb: float | None = None  # "Start of compilation memory usage: Peak N KB"
    peak_after_mb: float | None = None  # "End of compilation memory usage: Peak N KB"


def _ms(value: str, unit: str) -> float:
    return float(value) / 1000 if unit == "us" else float(value)


def _model_inputs(lines: list[str]) -> list[re.Match]:
    """The input lines of every "Model inputs:" block (not the outputs' lines that follow them)."""
    found, inside = [], False
    for line in lines:
        if line.strip().startswith(("Model inputs:", "Model outputs:")):
            inside = line.strip().startswith("Model inputs:")
        elif inside and (match := MODEL_INPUT.search(line)):
            found.append(match)
        elif not line.startswith("    "):
            inside = False
    return found


def parse_benchmark_app(text: str) -> BenchmarkAppResult:
    lines = [line.split("]", 1)[1] if line.lstrip().startswith("[ ") and "]" in line else line
             for line in text.splitlines()]
    errors = [line for line in text.splitlines() if "[ ERROR ]" in line]
    if errors:
        raise ToolOutputError(f"benchmark_app failed: {errors[0].strip()}")
    if any(GROUPS in line for line in lines):
        groups = [line.strip() for line in lines if re.match(r"^\s*\d+\.\s", line)]
        raise ToolOutputError(f"benchmark_app ran {len(groups)} data shape groups ({'; '.join(groups)}): their "
                              "aggregate latency is no one shape's; rerun with a single -data_shape")
    found: dict[str, float] = {}
    for line in lines:
        for name, pattern in FIELDS.items():
            if name in found:
                continue
            if match := pattern.search(line):
                if name == "count":
                    found[name] = float(match.group(1))
                elif name == "percentile":
                    found[f"p{match.group(1)}"] = _ms(*match.groups()[1:])
                else:
                    found[name] = _ms(*match.groups())
    median = found.get("median", found.get("one_latency"))
    if "count" not in found or (median is None and not any(k.startswith("p") for k in found)):
        last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "<empty output>")
        missing = "'Count: N iterations' line" if "count" not in found else "latency line ('Median:' or 'Latency: X ms')"
        raise ToolOutputError(f"benchmark_app output has no {missing}; last line: {last!r}")
    mode = next((m.group(1) for m in map(MEASURING.search, lines) if m), "")
    requests = re.search(r"(\d+) inference requests", mode)
    streams = re.search(r"using (\d+) streams", mode)
    batch = next((int(m.group(1)) for m in map(BATCH.search, lines) if m), None)
    inputs = _model_inputs(lines)
    hint = next((m.group(1) for m in map(PRECISION_HINT.search, lines) if m), None)
    read = next((_ms(*m.groups()) for m in map(READ_MODEL.search, lines) if m), None)
    compiled = next((_ms(*m.groups()) for m in map(COMPILE_MODEL.search, lines) if m), None)
    ram = next((int(m.group(1)) / 1024 for m in map(COMPILE_RAM.search, lines) if m), None)
    peaks = {m.group(1): int(m.group(2)) / 1024 for m in map(COMPILE_PEAK.search, lines) if m}
    return BenchmarkAppResult(
        count=int(found["count"]), median_ms=median, mean_ms=found.get("mean"), min_ms=found.get("min"),
        max_ms=found.get("max"), first_ms=found.get("first"), p99_ms=found.get("p99"),
        api="async" if "asynchronously" in mode else "sync" if "synchronously" in mode else None,
        requests=int(requests.group(1)) if requests else None, streams=int(streams.group(1)) if streams else None,
        batch=batch, input_layout=inputs[-1].group(1) if inputs else None,
        input_shape=tuple(int(d) for d in inputs[-1].group(2).split(",")) if inputs else None,
        precision=HINT_PRECISIONS.get(hint.lower()) if hint else None, read_ms=read, compile_ms=compiled,
        compile_ram_mb=ram, peak_before_mb=peaks.get("Start"), peak_after_mb=peaks.get("End"))
