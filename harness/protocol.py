"""What travels between the controller and a worker process: a job, and what became of it.

Both sides use these types, and JSON is only their wire format: `to_json` writes every field,
`from_json` refuses a document of another protocol version, with a missing field or with one it
does not know. A field added to one side is therefore either read on the other or a test fails
(tests/test_protocol.py), never silently dropped.
"""
from __future__ import annotations

import json
import types
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

from .spec import ModelSpec, Target
from .stats import Summary

PROTOCOL_VERSION = 11  # 2: coverage; 3: interference, noise limits; 4: Job.layer; 5: max_iterations; 6: footprint;
# 7: precision axis (int8, calibration, agreement, precision coverage); 8: compilation (torch.compile);
# 9: Job.repeat and Job.retry_failed (a farm's measurements and kept failures); 10: a kept cold compile (Job.cold_compile,
# Compilation.cold_reused); 11: mixed int8 recipes (Job.keep_float)
# ok | invalid: outputs disagree with torch | inaccurate: a low-precision artifact whose agreement with fp32 torch
# on held-out photographs is below AGREEMENT_FLOOR (timed, stored, never used by a claim) | recompiled: a compiled
# model (torch.compile) compiled again while it was timed, so samples include compilation (timed, stored, never
# used by a claim) | screened: a valid run `harness advise` timed briefly in a kept worker to rank candidates (timed,
# stored, never the latest valid run of its key, so never used by a claim) | error | crashed
STATUSES = ("ok", "invalid", "inaccurate", "recompiled", "screened", "error", "crashed")
TIMED_STATUSES = ("ok", "inaccurate", "recompiled", "screened")  # runs that hold a latency, valid for claims or not
# max |runtime - torch| / max |torch|: float32 runtimes agree to ~1e-6; fp16 weights/compute to ~1e-3. A whole
# int8 model is judged by its agreement on photographs instead (its error on one random input says little);
# the int8 tolerance applies to a layer timed alone, and only catches a broken artifact (wrong layout, scale).
PARITY_TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "bf16": 5e-2, "int8": 1.0}
LOW_PRECISIONS = ("int8",)  # quantized with calibration images; judged by agreement
# The floor an int8 artifact's mean logit cosine similarity with fp32 torch must reach on the held-out
# photographs. Post-training int8 of these models lands at 0.93-0.999 (measured: ORT, OpenVINO, LiteRT,
# ExecuTorch on t8); below 0.9 the artifact is computing another function.
AGREEMENT_FLOOR = 0.9


@dataclass(frozen=True)
class TimingPolicy:
    """How long to warm up and to time: each phase runs until both its count and its time are reached."""
    warmup_iterations: int = 10
    warmup_seconds: float = 1.0
    min_iterations: int = 50
    min_seconds: float = 3.0
    max_seconds: float = 120.0  # a hard stop for very slow targets (never cuts below min_iterations)
    # a stop for very fast calls (a layer alone): past this many timed samples the median is pinned, and
    # more only cost storage and the bootstrap; None: no limit (never cuts below min_iterations)
    max_iterations: int | None = None


# A job's `layer`: a module path of the model, timed alone (harness.measure.layers), or these
OVERHEAD = "overhead"  # the layer name of the empty-model probe: a runtime's per-call cost
COMPOSED = "+"  # "a+b": modules a and b, consecutive in the model, run as one (harness.predict.fusion)
# A layer takes a fraction of a millisecond: a third of a second of timing holds hundreds of calls (the
# fastest stop at 2000: a second of a 7 us call was 140,000 samples, whose bootstrap alone took seconds and
# gigabytes), and its median lands where a whole second's did (benchmarks/layer_sweep.py compares both).
LAYER_POLICY = TimingPolicy(warmup_iterations=10, warmup_seconds=0.1, min_iterations=100, min_seconds=0.3,
                            max_seconds=30.0, max_iterations=2000)


# Limits past which a run is marked noisy (harness run --max-other-cpu / --max-steal).
MAX_OTHER_CPU = 0.25  # cores' worth of other processes' work, on average, while timing
MAX_STEAL = 0.05  # cores' worth of CPU time the hypervisor gave to other guests


@dataclass(frozen=True)
class Interference:
    """What else used the machine while a run was timed (harness.measure.interference), in cores' worth
    on average over the timing window."""
    other_cpu: float  # other processes' CPU use
    steal: float  # time the hypervisor gave to other guests
    load_before: float  # 1-minute load average
    load_after: float
    throttle_events: int | None  # thermal throttling events during the window, where the CPU reports them
    mhz: float | None  # mean clock of this process's CPUs, where cpufreq is readable

    def noisy(self, max_other_cpu: float = MAX_OTHER_CPU, max_steal: float = MAX_STEAL) -> bool:
        return self.other_cpu > max_other_cpu or self.steal > max_steal or bool(self.throttle_events)


@dataclass(frozen=True)
class Footprint:
    """What a run costs besides latency: start-up, size and memory (harness.measure.footprint). Each
    figure is None where it was not measured (or a tool's log does not print it)."""
    load_ms: float | None = None  # loading the artifact until it can run: session, compilation, allocation
    load_warm_ms: float | None = None  # loading it again in the same process (OpenVINO: from its model cache)
    export_ms: float | None = None  # exporting the artifact for this run: 0 when it came from the cache
    build_ms: float | None = None  # the artifact's own export time, as the cache recorded it
    artifact_bytes: int | None = None  # on disk, every file of the artifact
    param_bytes: int | None = None  # the model's parameters and buffers, as exported
    rss_before_mb: float | None = None  # the process before the model was loaded (interpreter, torch, runtime)
    peak_load_mb: float | None = None  # the process's peak while loading
    peak_timing_mb: float | None = None  # the process's peak while timing
    model_peak_mb: float | None = None  # the model's own share: the higher peak less rss_before_mb
    gpu_peak_mb: float | None = None  # device memory at its peak, on GPUs
    peak_is_lifetime: bool = False  # the OS could not reset the peak: the two peaks are the process's so far


@dataclass(frozen=True)
class Agreement:
    """How the run's artifact agrees with the fp32 PyTorch model on held-out photographs (harness.measure.images):
    the question a low precision raises, asked of every artifact on each runtime, thread count and host (later runs
    of the same carry the answer, marked in their environment as "agreement_reused")."""
    images: int
    top1: float  # share of images whose top-1 class matches fp32 torch's
    cosine: float  # mean cosine similarity of the logits
    cosine_min: float
    held_out: str  # the held-out set's identity
    accuracy_top1: float | None = None  # on a labelled --eval folder, with real weights
    eval_images: int | None = None


@dataclass(frozen=True)
class Compilation:
    """How a compiling runtime (torch.compile) built the model the run timed: what a user pays before the first
    inference, and whether the number is a clean one (one graph, no recompilation while timing)."""
    mode: str  # torch.compile's mode
    compile_ms: float  # cold: compiling into an empty cache, up to the first inferences
    graphs: int  # graphs dynamo compiled while loading (1 + graph breaks, more if it recompiled then)
    graph_breaks: int
    break_reasons: list[str] = field(default_factory=list)  # dynamo's reason per break (first few)
    recompiles: int = 0  # graphs compiled after loading, while the run was warmed up and timed
    compile_warm_ms: float | None = None  # compiling again from the cache the cold compile filled
    cold_reused: bool = False  # compile_ms was measured by an earlier run of the same compile key, and kept


@dataclass(frozen=True)
class PrecisionRow:
    """How many nodes (and FLOPs) of one op type a low-precision artifact computes in int8 and how many in float,
    from the runtime's own view of the artifact (Backend.precision_coverage)."""
    op_type: str
    op_class: str
    kernel: int | None
    depthwise: bool
    low_nodes: int
    float_nodes: int
    low_flops: int
    float_flops: int


class ProtocolError(ValueError):
    """A job or result document this code cannot read; the message says what is wrong."""


def _checked(cls, data: Any, what: str) -> dict:
    """`data` as keyword arguments for `cls`: a dict with every required field and no unknown one."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{what}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    if unknown := sorted(set(data) - names):
        raise ProtocolError(f"{what}: unknown field(s) {', '.join(unknown)}")
    if missing := sorted(required - set(data)):
        raise ProtocolError(f"{what}: missing field(s) {', '.join(missing)}")
    return dict(data)


def _decode(cls, data: Any, what: str):
    """An instance of dataclass `cls` from its JSON form, nested dataclasses (and lists and optionals
    of them) included; ProtocolError naming the first thing that does not fit."""
    args = _checked(cls, data, what)
    hints = get_type_hints(cls)
    for name, value in args.items():
        kind = hints[name]
        if get_origin(kind) in (Union, types.UnionType):  # X | None
            kind = next(k for k in get_args(kind) if k is not type(None))
        if is_dataclass(kind) and value is not None:
            args[name] = _decode(kind, value, f"{what}.{name}")
        elif get_origin(kind) is list and is_dataclass(get_args(kind)[0]):
            args[name] = [_decode(get_args(kind)[0], item, f"{what}.{name}[]") for item in value]
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{what}: {exc}") from exc


def _check_version(data: dict, what: str) -> None:
    version = data.get("version") if isinstance(data, dict) else None
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"{what} speaks protocol version {version}; this harness speaks {PROTOCOL_VERSION}")


@dataclass(frozen=True)
class Job:
    """One model spec to time on one target, as the worker process receives it."""
    kind: ClassVar[str] = "run"
    spec: ModelSpec
    target: Target
    threads: int
    policy: TimingPolicy
    cache_dir: str  # absolute: the worker may run in another directory
    precision: str = "fp32"
    profile_iterations: int = 0  # >0: per-op profile after timing, averaged over this many inferences
    max_other_cpu: float = MAX_OTHER_CPU  # past these the run is marked noisy
    max_steal: float = MAX_STEAL
    # `harness layers`: time one layer of the spec's model alone (its module path, or "overhead" for the
    # empty-model probe), stored under its signature with how many times the model runs it
    layer: str | None = None
    layer_signature: str | None = None
    layer_count: int | None = None
    # int8: the folder of calibration images (None: the bundled photographs), and --eval's labelled folder
    calibration: str | None = None
    eval_dir: str | None = None
    # a farm (AI Hub): which measurement of the spec on the target this is (each is a job of its own there), and
    # whether a failure kept as the model's own (a compile refused) is submitted again
    repeat: int = 0
    retry_failed: bool = False
    # torch.compile: compile cold again, though a cold compile of this model, versions and mode is kept
    cold_compile: bool = False
    # a mixed int8 recipe: the op classes (harness.opclass) its quantizer leaves in float, comma-joined; "" for none
    keep_float: str = ""
    version: int = PROTOCOL_VERSION

    @property
    def tolerance(self) -> float:
        return PARITY_TOLERANCE[self.precision]

    def describe(self) -> str:
        what = f"{self.spec.model} {self.spec.form}" + (f" layer {self.layer_signature}" if self.layer else "")
        return f"{what} on {self.target.name}"

    def __post_init__(self):
        if self.precision not in PARITY_TOLERANCE:
            raise ProtocolError(f"unknown precision {self.precision!r}")
        if self.keep_float and self.precision not in LOW_PRECISIONS:
            raise ProtocolError(f"keep_float {self.keep_float!r} asked of {self.precision}, which quantizes nothing")


@dataclass(frozen=True)
class PeakJob:
    """A runtime's dense-GEMM throughput to measure on one target (the roofline's roof)."""
    kind: ClassVar[str] = "peak"
    target: Target
    threads: int
    gemm_size: int
    policy: TimingPolicy
    cache_dir: str
    version: int = PROTOCOL_VERSION

    def describe(self) -> str:
        return f"{self.gemm_size}x{self.gemm_size} GEMM on {self.target.name}"


JOB_KINDS = {Job.kind: Job, PeakJob.kind: PeakJob}


def job_to_json(job: Job | PeakJob) -> str:
    return json.dumps({"kind": job.kind, **asdict(job)}, indent=1)


def job_from_json(text: str) -> Job | PeakJob:
    data = _loads(text, "job")
    _check_version(data, "job")
    kind = data.pop("kind", None)
    if kind not in JOB_KINDS:
        raise ProtocolError(f"job: unknown kind {kind!r}; expected one of {', '.join(JOB_KINDS)}")
    return _decode(JOB_KINDS[kind], data, "job" if kind == Job.kind else f"{kind} job")


@dataclass(frozen=True)
class OpRow:
    """Time of one runtime op (or torch module) per inference, in the harness's op-class vocabulary."""
    op_name: str
    op_type: str | None
    op_class: str
    calls: int
    total_ms: float
    compute_unit: str | None = None  # where a farm's device ran it (NPU, GPU, CPU); None for other runtimes


@dataclass(frozen=True)
class CoverageRow:
    """How many nodes (and FLOPs) of one aten op a delegate's partitioner took into the artifact, and how
    many stayed on the runtime's fallback (portable) kernels."""
    partitioner: str
    op_type: str
    op_class: str
    kernel: int | None
    depthwise: bool
    delegated_nodes: int
    portable_nodes: int
    delegated_flops: int
    portable_flops: int


@dataclass
class RunResult:
    """How a job ended, as the worker reports it (or the controller, when the worker could not)."""
    status: str  # one of STATUSES
    error: str | None = None  # one line for tables
    log: str | None = None  # the worker's traceback, or a crashed worker's stderr tail and its job file
    imported: bool = False  # measured elsewhere by a vendor tool
    first_ns: int | None = None
    warmup_ns: list[int] = field(default_factory=list)
    samples_ns: list[int] = field(default_factory=list)
    summary: Summary | None = None  # of samples_ns, or the vendor tool's own statistics
    parity_max_abs: float | None = None
    parity_rel: float | None = None
    artifact_path: str | None = None
    artifact_key: str | None = None
    class_flops: dict[str, int] = field(default_factory=dict)  # the model's FLOPs per op class
    op_profile: list[OpRow] = field(default_factory=list)
    coverage: list[CoverageRow] = field(default_factory=list)  # delegate runtimes only (ExecuTorch)
    precision_coverage: list[PrecisionRow] = field(default_factory=list)  # low-precision artifacts only
    agreement: Agreement | None = None  # with fp32 torch on held-out photographs (whole models)
    calibration: str | None = None  # the calibration set's identity (int8 artifacts)
    interference: Interference | None = None  # None where the OS gives no counters (or nothing was timed)
    noisy: bool = False  # interference past the job's limits
    footprint: Footprint | None = None  # load time, size, memory
    compilation: Compilation | None = None  # compiling runtimes (torch.compile) only
    environment: dict = field(default_factory=dict)  # facts that can move the number
    started_at: float | None = None  # Unix time
    finished_at: float | None = None
    version: int = PROTOCOL_VERSION

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ProtocolError(f"unknown status {self.status!r}; expected one of {', '.join(STATUSES)}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        return _result_from(cls, _loads(text, "result"), "result")


@dataclass
class PeakResult:
    status: str
    error: str | None = None
    log: str | None = None
    gflops: float | None = None
    samples: int = 0
    version: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PeakResult:
        return _result_from(cls, _loads(text, "peak result"), "peak result")


def _result_from(cls, data: Any, what: str):
    _check_version(data, what)
    return _decode(cls, data, what)


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from exc
