"""Runs measured elsewhere, by a vendor tool we cannot drive here, stored beside ours as `imported`.

Each importer turns a tool's output into a protocol.RunResult. Statistics a tool does not report
stay None; per-iteration samples are stored when the tool gives them (trtexec --exportTimes).
What the log says it ran (batch, input resolution, precision) fills in what the user left out, and a
log that contradicts what the user did say is refused.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from backends.benchmark_app import BenchmarkAppResult, parse_benchmark_app
from backends.benchmark_model import BenchmarkModelResult, ToolOutputError, parse_benchmark_model
from backends.executorch_backend import parse_etdump
from backends.trtexec import TrtexecResult, parse_export_times, parse_trtexec_log

from ..opclass import classify_rows, xnnpack_class
from ..protocol import Footprint, OpRow, RunResult
from ..spec import ModelSpec, Target
from ..stats import Summary, summarize
from ..store import save_run

# tool -> the backend whose numbers it produces
TOOL_BACKENDS = {"benchmark_model": "litert", "trtexec": "tensorrt", "benchmark_app": "openvino",
                 "etdump": "executorch", "manual": None}
TARGET_OPTIONS = "target_options"  # environment key: how the tool ran, when that makes it a target of its own
DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\- ]{0,63}$")
STATABLE = ("batch", "resolution", "precision")  # what a log can say it ran
DEFAULT_PRECISION = "fp32"


@dataclass(frozen=True)
class LogFacts:
    """What a tool's log says it ran; None where it does not say."""
    batch: int | None = None
    resolution: int | None = None
    precision: str | None = None


def image_resolution(shape: tuple[int, ...] | None) -> int | None:
    """The side of a square RGB image input, NCHW or NHWC; None for any other input."""
    if not shape or len(shape) != 4:
        return None
    if shape[1] == 3 and shape[2] == shape[3]:
        return shape[2]
    if shape[3] == 3 and shape[1] == shape[2]:
        return shape[1]
    return None


@dataclass(frozen=True)
class ImportRequest:
    """What `harness import` was told: the tool, where it ran, what it measured."""
    tool: str
    device: str
    spec: ModelSpec
    precision: str
    threads: int
    backend: str | None = None  # default: the tool's own runtime
    log_file: Path | None = None
    export_times_file: Path | None = None
    latency_ms: float | None = None  # --tool manual: the median read off the tool
    note: str | None = None
    etrecord_file: Path | None = None  # --tool etdump: the program's ETRecord (names of portable ops)
    delegation_file: Path | None = None  # --tool etdump: delegation.json of the exported .pte (layer kernels)
    # which of batch, resolution and precision the user gave; the others are taken from the log where it
    # says, and spec/precision hold the defaults until then
    stated: frozenset[str] = frozenset(STATABLE)

    def target(self, options: str = "") -> Target:
        return Target(self.backend or TOOL_BACKENDS[self.tool], self.device, options)


def check(request: ImportRequest) -> None:
    """ValueError, in one sentence, for an import that cannot be made as asked."""
    if request.tool not in TOOL_BACKENDS:
        raise ValueError(f"unknown tool {request.tool!r}; choose one of: {', '.join(TOOL_BACKENDS)}")
    if not DEVICE_NAME.match(request.device):
        raise ValueError(f"device name {request.device!r} must be 1-64 letters, digits, spaces or . _ : -")
    if not (request.backend or TOOL_BACKENDS[request.tool]):
        raise ValueError("--tool manual needs --backend (the runtime that produced the number, e.g. coreml)")
    if request.tool == "manual":
        if request.latency_ms is None or not 0 < request.latency_ms < math.inf:
            raise ValueError("--tool manual needs --latency-ms, the median latency read off the tool, in (positive, "
                             "finite) milliseconds")
    elif request.log_file is None:
        raise ValueError(f"--tool {request.tool} needs the log FILE")


@dataclass(frozen=True)
class Imported:
    """A log read: the request with what the log ran filled in, and the run it describes."""
    request: ImportRequest
    result: RunResult


# lines only one tool prints: a log refused by one parser names the tool that wrote it
TOOL_MARKS = {"trtexec": re.compile(r"&&&& (?:RUNNING|PASSED|FAILED) TensorRT\.trtexec|\] GPU Compute Time: min"),
              "benchmark_model": re.compile(r"^(?:INFO: )?Initialized session in|^STARTING!$|Inference timings in us",
                                            re.MULTILINE),
              "benchmark_app": re.compile(r"\[Step \d+/\d+\] |Measuring performance \(")}


def written_by(text: str) -> str | None:
    """The tool whose output `text` looks like, when exactly one tool's marks are in it."""
    found = [tool for tool, mark in TOOL_MARKS.items() if mark.search(text)]
    return found[0] if len(found) == 1 else None


def import_result(request: ImportRequest) -> Imported:
    """The run a tool's output describes; ValueError for a bad request or a log that contradicts it,
    ToolOutputError for a log that cannot be read (naming the tool that wrote it, when another did)."""
    check(request)
    try:
        return _import(request)
    except ToolOutputError as exc:
        if request.log_file is None or request.tool in ("etdump", "manual") or "not a text log" in str(exc):
            raise
        other = written_by(read_log(request.log_file))
        if other and other != request.tool:
            raise ToolOutputError(f"{request.log_file} is a {other} log, not {request.tool}'s: import it with "
                                  f"--tool {other}") from exc
        raise


def _import(request: ImportRequest) -> Imported:
    text = read_log(request.log_file, request.tool) if request.log_file is not None and request.tool != "etdump" \
        else None
    facts = LogFacts()
    if request.tool == "benchmark_model":
        result = from_benchmark_model(parse_benchmark_model(text))
    elif request.tool == "trtexec":
        parsed = parse_trtexec_log(text)
        facts = LogFacts(parsed.batch, image_resolution(parsed.input_shape), parsed.precision)
        result = from_trtexec(parsed, read_log(request.export_times_file) if request.export_times_file else None)
    elif request.tool == "etdump":
        result = from_etdump(request)
    elif request.tool == "benchmark_app":
        parsed = parse_benchmark_app(text)
        facts = LogFacts(parsed.batch or (parsed.input_shape[0] if parsed.input_shape else None),
                         image_resolution(parsed.input_shape), parsed.precision)
        result = from_benchmark_app(parsed)
    else:
        result = RunResult(status="ok", summary=Summary(median_ms=request.latency_ms))
    result.imported = True
    result.environment.update(tool=request.tool, note=request.note)
    return Imported(as_logged(request, facts), result)


def as_logged(request: ImportRequest, facts: LogFacts) -> ImportRequest:
    """`request` with the batch, resolution and precision the log ran where the user gave none;
    ValueError when the log ran another one than the user said."""
    told = {"batch": request.spec.batch, "resolution": request.spec.resolution, "precision": request.precision}
    taken = {}
    for name in STATABLE:
        said = getattr(facts, name)
        if said is None or said == told[name]:
            continue
        if name in request.stated:
            raise ValueError(f"the log ran {name} {said} but the import says --{name} {told[name]}; leave "
                             f"--{name} out to take the log's, or import the log of a {told[name]} run")
        taken[name] = said
    precision = taken.pop("precision", request.precision)
    try:
        spec = replace(request.spec, **taken)
    except ValueError as exc:
        raise ValueError(f"the log ran a model spec the harness cannot name: {exc}") from exc
    return replace(request, spec=spec, precision=precision)


def from_etdump(request: ImportRequest) -> RunResult:
    """An ETDump (with, optionally, the program's ETRecord and delegation.json): every traced execution
    as a sample, and the operator profile."""
    layers = None
    if request.delegation_file is not None:
        try:
            layers = json.loads(read_log(request.delegation_file))["layers"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolOutputError(f"{request.delegation_file} is not a delegation.json written by harness export "
                                  f"--backend executorch") from exc
    parsed = parse_etdump(request.log_file, request.etrecord_file, layers)
    samples = [int(ms * 1e6) for ms in parsed.samples_ms]
    return RunResult(status="ok", samples_ns=samples, summary=summarize(samples),
                     op_profile=classify_rows(parsed.rows),
                     environment={"timing": "ETDump Method::execute", "kernels_mapped": layers is not None})


def from_benchmark_app(parsed: BenchmarkAppResult) -> RunResult:
    load = (parsed.read_ms or 0) + parsed.compile_ms if parsed.compile_ms is not None else None
    result = RunResult(status="ok", summary=Summary(count=parsed.count, min_ms=parsed.min_ms, median_ms=parsed.median_ms,
                                                    mean_ms=parsed.mean_ms, max_ms=parsed.max_ms, p99_ms=parsed.p99_ms),
                       first_ns=int(parsed.first_ms * 1e6) if parsed.first_ms is not None else None,
                       # reading and compiling the model is its load; "Compile model ram used" its memory
                       footprint=Footprint(load_ms=load, rss_before_mb=parsed.peak_before_mb,
                                           peak_load_mb=parsed.peak_after_mb, model_peak_mb=parsed.compile_ram_mb))
    if (parsed.requests or 1) > 1 or (parsed.streams or 1) > 1:
        # several requests in flight: a throughput run. Its latency is not single-stream latency, so it
        # gets a target of its own, named with the mode, and is never compared with one silently.
        result.environment[TARGET_OPTIONS] = ",".join(f"{k}={v}" for k, v in (
            ("api", parsed.api), ("requests", parsed.requests), ("streams", parsed.streams)) if v)
    return result


def from_trtexec(parsed: TrtexecResult, export_times: str | None) -> RunResult:
    g = parsed.gpu_compute
    environment = {"command": parsed.command, "timing": "trtexec GPU Compute Time",
                   "latency_with_copies_median_ms": parsed.latency.median_ms if parsed.latency else None}
    # loading is deserializing the engine; the device memory is what TensorRT itself manages (weights,
    # activations), not the CUDA context
    footprint = Footprint(load_ms=parsed.deserialize_ms, build_ms=parsed.build_ms, gpu_peak_mb=parsed.gpu_mib,
                          artifact_bytes=int(parsed.engine_mib * 2**20) if parsed.engine_mib is not None else None)
    if export_times is not None:
        samples = [int(ms * 1e6) for ms in parse_export_times(export_times)]
        return RunResult(status="ok", samples_ns=samples, summary=summarize(samples), environment=environment,
                         footprint=footprint)
    return RunResult(status="ok", environment=environment, footprint=footprint, summary=Summary(
        count=parsed.iterations, min_ms=g.min_ms, median_ms=g.median_ms, mean_ms=g.mean_ms, p90_ms=g.p90_ms,
        p95_ms=g.p95_ms, p99_ms=g.p99_ms, max_ms=g.max_ms))


def from_benchmark_model(parsed: BenchmarkModelResult) -> RunResult:
    """benchmark_model's statistics and op table (from an imported log, or a phone run of ours)."""
    t = parsed.timed
    ms = {name: value / 1e3 if value is not None else None for name, value in (
        ("min_ms", t.min_us), ("median_ms", t.median_us), ("mean_ms", t.avg_us), ("p95_ms", t.p95_us),
        ("max_ms", t.max_us), ("std_ms", t.std_us))}
    summary = Summary(count=t.count, cv=t.std_us / t.avg_us if t.std_us is not None and t.avg_us else None, **ms)
    # the tool's [avg ms] is per inference, all calls of that row together
    ops = [OpRow(op_name=o.name, op_type=o.node_type, op_class=xnnpack_class(o.node_type), calls=o.calls,
                 total_ms=o.avg_ms) for o in parsed.ops]
    # "Memory footprint delta from the start of the tool": the model's share after init and at the end
    shares = [mb for mb in (parsed.memory_init_mb, parsed.memory_overall_mb) if mb is not None]
    footprint = Footprint(load_ms=parsed.init_ms, model_peak_mb=max(shares) if shares else None,
                          artifact_bytes=int(parsed.model_file_mb * 1e6) if parsed.model_file_mb is not None else None)
    return RunResult(status="ok", first_ns=int(parsed.warmup.first_us * 1e3), summary=summary, op_profile=ops,
                     footprint=footprint, environment={"tool": "benchmark_model", "init_ms": parsed.init_ms,
                                                       "delegate_note": parsed.delegate_note})


def read_log(path: Path, tool: str | None = None) -> str:
    """The text of a log; ToolOutputError for a file that cannot be read or holds binary data."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ToolOutputError(f"cannot read {path}: {exc.strerror}") from exc
    if b"\x00" in data[:65536]:
        what = f"the text {tool} prints" if tool else "text"
        raise ToolOutputError(f"{path} is not a text log (it holds binary data); this import reads {what}")
    return data.decode(errors="replace")


def imported_host(device: str) -> dict:
    """Imported runs belong to the device that produced them, not to this machine."""
    return {"hostname": f"imported:{device}", "cpu_model": device, "logical_cores": None, "os": "unknown",
            "machine": "unknown"}


def store_import(engine, imported: Imported) -> int:
    """Store one read log (import_result) as an imported run; returns the run id."""
    request, result = imported.request, imported.result
    return save_run(engine, result, spec=request.spec, target=request.target(result.environment.get(TARGET_OPTIONS, "")),
                    threads=request.threads, precision=request.precision, host=imported_host(request.device))


def log_files(paths: list[Path]) -> list[Path]:
    """The files named, with each folder replaced by the regular files in it (sorted, not recursive)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class Outcome:
    """One log of a folder: stored (its run id) or refused (why)."""
    request: ImportRequest
    run_id: int | None = None
    refused: str | None = None


def import_each(engine, requests: list[ImportRequest]):
    """Each log read and stored on its own, a refused one never stopping the rest: yields an Outcome per log."""
    for request in requests:
        try:
            yield Outcome(request, store_import(engine, import_result(request)))
        except (ValueError, ToolOutputError) as exc:
            yield Outcome(request, refused=str(exc))
