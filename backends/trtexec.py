"""Parsing NVIDIA's `trtexec`: its performance summary, and the per-iteration `--exportTimes` JSON.

TensorRT 8.6 and later print (8.0-8.5: only percentile(99%); tests/fixtures/SOURCES.md lists the logs):

    [I] GPU Compute Time: min = 1.1875 ms, max = 1.52344 ms, mean = 1.21484 ms, median = 1.21094 ms,
        percentile(90%) = 1.22656 ms, percentile(95%) = 1.23438 ms, percentile(99%) = 1.28906 ms
    &&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --onnx=model.onnx --fp16

TensorRT 7.x prints one block per metric instead:

    [I] GPU Compute
    [I] min: 4.2439 ms
    [I] max: 7.02356 ms
    [I] mean: 4.42492 ms
    [I] median: 4.40088 ms
    [I] percentile: 5.36792 ms at 99%

"GPU Compute Time" is what our TensorRT target measures (CUDA events around execution on device
buffers); "Latency" adds host<->device copies and is kept as extra information only.

What the log ran, where it says so: the input shape from the echoed command (`--shapes=x:4x3x224x224`,
`--batch=4`), else from the lines every version prints while it sets up, which also cover a
`--loadEngine` run of an engine built for a fixed batch and a build at its `--optShapes`:

    [I] Input inference shape : x=4x1x28x28                           (8.x: "shape:", 10: "shape :")
    [I] Created input binding for x with dimensions 4x1x28x28         (7.x-8.x)
    [I] Input binding for x with dimensions 4x1x28x28 and type fp32 is created.   (10.x)

and the precision from the build flags (`--fp16`, `--int8`, `--bf16`, `--best`) or the option dump's
`Precision: FP32+FP16` line, only for a log that built its engine: a `--loadEngine` run prints the
build options' defaults, which say nothing of the engine it loaded.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .benchmark_model import ToolOutputError

NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
# "GPU Compute Time: min = 1 ms, max = 2 ms, ..., percentile(99%) = 3 ms", any set of percentiles
ONE_LINE = re.compile(rf"(?:^|\] ?)(?:\[I\] )?([A-Za-z][\w ]*?): min = ({NUMBER}) ms, (.*)$")
FIELD = re.compile(rf"(max|mean|median|percentile\((\d+)%\)) = ({NUMBER}) ms")
# TensorRT 7: a heading line, then "min: X ms", ..., "percentile: X ms at 99%"
BLOCK_FIELD = re.compile(rf"\[I\] (min|max|mean|median|percentile): ({NUMBER}) ms(?: at (\d+)%)?")
BLOCK_HEADINGS = {"GPU Compute": "GPU Compute Time", "Host Latency": "Latency"}
TRACE = re.compile(r"Timing trace has (\d+) queries")
SHAPES = re.compile(r"--shapes=([^\s]+)")
IMPLICIT_BATCH = re.compile(r"--batch=(\d+)")
INFERENCE_SHAPE = re.compile(r"\[I\] Input inference shapes? ?: (.+)$")  # "x=4x1x28x28" or "model"
BINDING = re.compile(r"\[I\] (?:Created input binding|Input binding) for (\S+) with dimensions ([\dx]+)")
PRECISION_LINE = re.compile(r"\[I\] Precision: ([A-Z0-9+]+)")
LOADED_ENGINE = re.compile(r"\[I\] Load engine: \S")
# what a run costs besides latency, where the log says it
DESERIALIZED = re.compile(rf"Engine deserialized in ({NUMBER}) sec")
BUILT = re.compile(rf"Engine built in ({NUMBER}) sec")
ENGINE_SIZE = re.compile(rf"Loaded engine size: ({NUMBER}) MiB")
TRT_MEMORY = re.compile(rf"TensorRT-managed allocation in .*now: CPU {NUMBER}, GPU ({NUMBER}) \(MiB\)")
# build flag (or option-dump word) -> the lowest precision it lets the builder choose; --best allows int8
PRECISION_FLAGS = (("--best", "int8"), ("--int8", "int8"), ("--fp16", "fp16"), ("--bf16", "bf16"))
PRECISION_WORDS = (("INT8", "int8"), ("FP16", "fp16"), ("BF16", "bf16"), ("FP32", "fp32"))


@dataclass
class TrtStats:
    min_ms: float
    max_ms: float
    mean_ms: float | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass
class TrtexecResult:
    gpu_compute: TrtStats
    latency: TrtStats | None
    command: str | None
    batch: int | None = None  # the batch it ran; None when the log does not say
    input_shape: tuple[int, ...] | None = None  # the (single) input's dimensions, where the log prints them
    precision: str | None = None  # fp32, fp16, bf16 or int8 for a log that built its engine; None otherwise
    iterations: int | None = None  # "Timing trace has N queries"
    deserialize_ms: float | None = None  # "Engine deserialized in X sec": loading the engine
    build_ms: float | None = None  # "Engine built in X sec", for a log that built its engine
    engine_mib: float | None = None  # "Loaded engine size: N MiB"
    gpu_mib: float | None = None  # the most TensorRT-managed device memory ("... now: CPU a, GPU b (MiB)")
    samples_ms: list[float] = field(default_factory=list)  # from --exportTimes, when given


def _stats(values: dict[str, float]) -> TrtStats:
    return TrtStats(values["min"], values["max"], values.get("mean"), values.get("median"), values.get("p90"),
                    values.get("p95"), values.get("p99"))


def _one_line_stats(lines: list[str]) -> dict[str, TrtStats]:
    found = {}
    for line in lines:
        match = ONE_LINE.search(line)
        if not match or " max = " not in line:
            continue
        values = {"min": float(match.group(2))}
        for name, percent, value in FIELD.findall(match.group(3)):
            values[f"p{percent}" if percent else name] = float(value)
        if "max" in values:
            found[match.group(1).strip()] = _stats(values)
    return found


def _block_stats(lines: list[str]) -> dict[str, TrtStats]:
    """TensorRT 7's multi-line blocks."""
    found, heading, values = {}, None, {}
    for line in lines + [""]:
        stripped = line.split("] ", 2)[-1].strip() if "] [I] " in line else ""
        match = BLOCK_FIELD.search(line)
        if match and heading:
            name, value, percent = match.groups()
            values[f"p{percent}" if name == "percentile" else name] = float(value)
            continue
        if heading in BLOCK_HEADINGS and "min" in values and "max" in values:
            found[BLOCK_HEADINGS[heading]] = _stats(values)
        heading, values = stripped, {}
    return found


def batch_of(command: str | None) -> int | None:
    """The batch an echoed trtexec command ran: the first dimension of every --shapes input (when
    they agree), or --batch=N for implicit-batch engines; None when the command does not say."""
    if not command:
        return None
    if match := SHAPES.search(command):
        firsts = {int(shape.rsplit(":", 1)[-1].split("x")[0]) for shape in match.group(1).split(",")
                  if ":" in shape and shape.rsplit(":", 1)[-1].split("x")[0].isdigit()}
        return firsts.pop() if len(firsts) == 1 else None
    if match := IMPLICIT_BATCH.search(command):
        return int(match.group(1))
    return None


def _dims(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split("x")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def input_shapes(lines: list[str]) -> dict[str, tuple[int, ...]]:
    """Each input's dimensions as the run set them up: the binding lines, else the inference-shape
    option ("x=4x1x28x28,y=4x2"; "model" means the engine's own, which only the bindings tell)."""
    found: dict[str, tuple[int, ...]] = {}
    for match in filter(None, map(BINDING.search, lines)):
        if (dims := _dims(match.group(2))) is not None:
            found.setdefault(match.group(1), dims)
    if found:
        return found
    for match in filter(None, map(INFERENCE_SHAPE.search, lines)):
        for item in match.group(1).strip().split(","):
            name, _, dims = item.rpartition("=")
            if name and (shape := _dims(dims)) is not None:
                found.setdefault(name, shape)
    return found


def precision_of(command: str | None, lines: list[str]) -> str | None:
    """The lowest precision the build allowed, for a log that built its engine; None for a loaded one."""
    if (command and "--loadEngine" in command) or any(LOADED_ENGINE.search(line) for line in lines):
        return None
    if command and (flag := next((p for f, p in PRECISION_FLAGS if re.search(rf"{f}(?:\s|=|$)", command)), None)):
        return flag
    words = next((m.group(1).split("+") for m in map(PRECISION_LINE.search, lines) if m), [])
    return next((precision for word, precision in PRECISION_WORDS if word in words), None)


def parse_trtexec_log(text: str) -> TrtexecResult:
    lines = text.splitlines()
    failed = next((line for line in lines if "&&&& FAILED" in line), None)
    if failed:
        error = next((line for line in lines if "[E]" in line), failed)
        raise ToolOutputError(f"trtexec failed: {error.strip()}")
    stats = {**_block_stats(lines), **_one_line_stats(lines)}
    if "GPU Compute Time" not in stats:
        last = next((line.strip() for line in reversed(lines) if line.strip()), "<empty output>")
        raise ToolOutputError("trtexec output has no GPU compute summary (looked for 'GPU Compute Time: min = ...' "
                              f"of TensorRT 8+ and the 'GPU Compute' block of TensorRT 7); last line: {last!r}")
    echoed = next((line for line in lines if ("&&&& PASSED" in line or "&&&& RUNNING" in line) and "#" in line), None)
    command = echoed.split("#", 1)[1].strip() if echoed else None
    trace = next((int(m.group(1)) for m in map(TRACE.search, lines) if m), None)
    shapes = input_shapes(lines)
    shape = next(iter(shapes.values())) if len(shapes) == 1 else None
    batch = batch_of(command)
    if batch is None and shapes and len({dims[0] for dims in shapes.values() if dims}) == 1:
        batch = next(iter(shapes.values()))[0]
    first = lambda pattern: next((float(m.group(1)) for m in map(pattern.search, lines) if m), None)  # noqa: E731
    managed = [float(m.group(1)) for m in map(TRT_MEMORY.search, lines) if m]
    deserialized, built = first(DESERIALIZED), first(BUILT)
    return TrtexecResult(gpu_compute=stats["GPU Compute Time"], latency=stats.get("Latency"), command=command,
                         batch=batch, input_shape=shape, precision=precision_of(command, lines), iterations=trace,
                         deserialize_ms=deserialized * 1e3 if deserialized is not None else None,
                         build_ms=built * 1e3 if built is not None else None, engine_mib=first(ENGINE_SIZE),
                         gpu_mib=max(managed) if managed else None)


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
