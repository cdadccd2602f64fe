"""What travels between the controller and a worker process: a job, and what became of it.

Both sides use these types, and JSON is only their wire format: `to_json` writes every field,
`from_json` refuses a document of another protocol version, with a missing field or with one it
does not know. A field added to one side is therefore either read on the other or a test fails
(tests/test_protocol.py), never silently dropped.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar

from .spec import ModelSpec, Target
from .stats import Summary
from .measure.timing import TimingPolicy

PROTOCOL_VERSION = 1
STATUSES = ("ok", "invalid", "error", "crashed")  # invalid: outputs disagree with torch
# max |runtime - torch| / max |torch|: float32 runtimes agree to ~1e-6; fp16 weights/compute to ~1e-3
PARITY_TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}


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
    version: int = PROTOCOL_VERSION

    @property
    def tolerance(self) -> float:
        return PARITY_TOLERANCE[self.precision]

    def describe(self) -> str:
        return f"{self.spec.model} {self.spec.form} on {self.target.name}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        args = _checked(cls, data, "job")
        try:
            args.update(spec=ModelSpec(**_checked(ModelSpec, args["spec"], "job.spec")),
                        target=Target(**_checked(Target, args["target"], "job.target")),
                        policy=TimingPolicy(**_checked(TimingPolicy, args["policy"], "job.policy")))
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"job: {exc}") from exc
        if args.get("precision", "fp32") not in PARITY_TOLERANCE:
            raise ProtocolError(f"job: unknown precision {args['precision']!r}")
        return cls(**args)


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

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> PeakJob:
        args = _checked(cls, data, "peak job")
        args.update(target=Target(**_checked(Target, args["target"], "peak job.target")),
                    policy=TimingPolicy(**_checked(TimingPolicy, args["policy"], "peak job.policy")))
        return cls(**args)


def job_to_json(job: Job | PeakJob) -> str:
    return json.dumps(job.to_dict(), indent=1)


def job_from_json(text: str) -> Job | PeakJob:
    data = _loads(text, "job")
    _check_version(data, "job")
    kinds = {Job.kind: Job, PeakJob.kind: PeakJob}
    kind = data.pop("kind", None)
    if kind not in kinds:
        raise ProtocolError(f"job: unknown kind {kind!r}; expected one of {', '.join(kinds)}")
    return kinds[kind].from_dict(data)


@dataclass(frozen=True)
class OpRow:
    """Time of one runtime op (or torch module) per inference, in the harness's op-class vocabulary."""
    op_name: str
    op_type: str | None
    op_class: str
    calls: int
    total_ms: float


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
    environment: dict = field(default_factory=dict)  # facts that can move the number
    started_at: float | None = None  # Unix time
    finished_at: float | None = None
    version: int = PROTOCOL_VERSION

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ProtocolError(f"result: unknown status {self.status!r}; expected one of {', '.join(STATUSES)}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        _check_version(data, "result")
        args = _checked(cls, data, "result")
        if args.get("summary") is not None:
            args["summary"] = Summary(**_checked(Summary, args["summary"], "result.summary"))
        args["op_profile"] = [OpRow(**_checked(OpRow, row, "result.op_profile[]")) for row in args.get("op_profile", [])]
        return cls(**args)

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        return cls.from_dict(_loads(text, "result"))


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
    def from_dict(cls, data: dict) -> PeakResult:
        _check_version(data, "peak result")
        return cls(**_checked(cls, data, "peak result"))

    @classmethod
    def from_json(cls, text: str) -> PeakResult:
        return cls.from_dict(_loads(text, "peak result"))


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from exc
