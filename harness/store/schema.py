"""The results schema: tables (SQLAlchemy 2 ORM) and the SQL views users query.

A run row is one model spec timed on one target; its samples, op profile and FLOP counts hang off
it. Every change to these tables comes with an Alembic migration (harness/store/migrations), which
`database.open_engine` applies to an older database; tests/test_store.py checks the two agree.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# What makes two runs measurements of the same thing: the "latest run" of every reader and view is
# the newest run per these columns.
RUN_KEY = ("host_id", "model", "resolution", "batch", "form", "weights", "target", "threads", "precision", "keep_float",
           "layer")
# A whole model's measurement over time (the history of one series): RUN_KEY without the layer.
SERIES_KEY = tuple(c for c in RUN_KEY if c != "layer")
# Runs that time the same model the same way on any target (what a speedup between targets compares).
SAME_SPEC_KEY = tuple(c for c in SERIES_KEY if c not in ("target", "precision", "keep_float"))


def recipe_label(precision: str, keep_float: str | None = "") -> str:
    """A precision and the op classes a mixed int8 recipe keeps in float, as tables and commands name them."""
    return f"{precision}+float({keep_float.replace(',', ', ')})" if keep_float else precision


def float_classes(keep_float: str | None) -> list[str]:
    """The op classes a stored recipe (runs.keep_float, comma-joined) keeps in float."""
    return [name for name in (keep_float or "").split(",") if name]


def key_of(run, columns: tuple[str, ...] = RUN_KEY) -> tuple:
    """A run's values of `columns` (one of the keys above)."""
    return tuple(getattr(run, c) for c in columns)


# The hostname of a published figure's device: "published: iPhone 12 Pro".
PUBLISHED_HOST_PREFIX = "published: "

# What makes a host the same machine in every database (merge matches hosts by it).
HOST_IDENTITY = ("hostname", "cpu_model", "logical_cores", "os", "machine", "isa")


class Base(DeclarativeBase):
    pass


def new_uuid() -> str:
    """A row's identity across databases (`harness merge`), given once, when it is created."""
    return str(uuid.uuid4())


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint(*HOST_IDENTITY, name="uq_hosts_identity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    cpu_model: Mapped[str] = mapped_column(String(255))
    logical_cores: Mapped[int | None]
    os: Mapped[str] = mapped_column(String(255))
    machine: Mapped[str] = mapped_column(String(64))
    # instruction-set features that change a runtime's kernels (avx2 avx512f avx512_bf16 amx ...): the
    # same CPU name can hide machines whose runtimes run 2-4x apart; "" where unknown (older runs)
    isa: Mapped[str] = mapped_column(String(255), default="")


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uuid)
    command: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished | interrupted


class Run(Base):
    __tablename__ = "runs"
    # the "latest run" rule's GROUP BY, answered from the index (migration 0007)
    __table_args__ = (Index("ix_runs_latest", "model", "resolution", "form", "host_id", "batch", "weights", "target",
                            "threads", "precision", "keep_float", "layer", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uuid)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id"), index=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    # model spec
    model: Mapped[str] = mapped_column(String(64), index=True)
    resolution: Mapped[int]
    batch: Mapped[int]
    form: Mapped[str] = mapped_column(String(16))
    weights: Mapped[str] = mapped_column(String(512))
    # target
    target: Mapped[str] = mapped_column(String(128), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(8), default="fp32")  # of the exported artifact
    # a mixed int8 recipe: the op classes its quantizer left in float, comma-joined ("": none; harness.measure.recipe)
    keep_float: Mapped[str] = mapped_column(String(255), default="", server_default="")
    threads: Mapped[int]
    # outcome: ok | invalid (outputs disagree with torch) | inaccurate (int8 below the agreement floor) | recompiled
    # (torch.compile compiled again while timed) | error | crashed
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str | None] = mapped_column(Text)  # worker traceback or a crashed worker's stderr tail
    imported: Mapped[bool] = mapped_column(Boolean, default=False)  # read from a vendor tool's log
    published: Mapped[bool] = mapped_column(Boolean, default=False)  # copied from a paper: see citation
    citation: Mapped[str | None] = mapped_column(Text)
    # `harness layers`: one layer of the model timed alone (NULL: the whole model), and its count in the model
    layer: Mapped[str | None] = mapped_column(String(255))
    layer_count: Mapped[int | None]
    parity_max_abs: Mapped[float | None] = mapped_column(Float)
    parity_rel: Mapped[float | None] = mapped_column(Float)
    # summary of the timed (steady-state) samples, milliseconds
    first_ms: Mapped[float | None] = mapped_column(Float)
    warmup_iterations: Mapped[int | None]
    iterations: Mapped[int | None]
    min_ms: Mapped[float | None] = mapped_column(Float)
    median_ms: Mapped[float | None] = mapped_column(Float)
    mean_ms: Mapped[float | None] = mapped_column(Float)
    p90_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    p99_ms: Mapped[float | None] = mapped_column(Float)
    max_ms: Mapped[float | None] = mapped_column(Float)
    std_ms: Mapped[float | None] = mapped_column(Float)
    cv: Mapped[float | None] = mapped_column(Float)
    median_ci_low_ms: Mapped[float | None] = mapped_column(Float)
    median_ci_high_ms: Mapped[float | None] = mapped_column(Float)
    # what else used the machine while timing (harness.measure.interference); NULL where unknown
    other_cpu: Mapped[float | None] = mapped_column(Float)  # cores' worth of other processes' work
    steal: Mapped[float | None] = mapped_column(Float)  # cores' worth of hypervisor steal
    load_before: Mapped[float | None] = mapped_column(Float)
    load_after: Mapped[float | None] = mapped_column(Float)
    throttle_events: Mapped[int | None]
    cpu_mhz: Mapped[float | None] = mapped_column(Float)
    noisy: Mapped[bool] = mapped_column(Boolean, default=False)  # past the sweep's limits
    # (max - min) / median of the medians of every fresh process of this job in its sweep (--repeats)
    process_spread: Mapped[float | None] = mapped_column(Float)
    # what the run costs besides latency (protocol.Footprint); NULL where not measured or not in the log
    load_ms: Mapped[float | None] = mapped_column(Float)  # loading the artifact until it can run
    load_warm_ms: Mapped[float | None] = mapped_column(Float)  # loading it again in the same process
    export_ms: Mapped[float | None] = mapped_column(Float)  # this run's export: 0 for a cache hit
    build_ms: Mapped[float | None] = mapped_column(Float)  # the artifact's original export time
    artifact_bytes: Mapped[int | None] = mapped_column(BigInteger)
    param_bytes: Mapped[int | None] = mapped_column(BigInteger)
    rss_before_mb: Mapped[float | None] = mapped_column(Float)  # the process before the model was loaded
    peak_load_mb: Mapped[float | None] = mapped_column(Float)  # its peak while loading
    peak_timing_mb: Mapped[float | None] = mapped_column(Float)  # its peak while timing
    model_peak_mb: Mapped[float | None] = mapped_column(Float)  # the model's own share of the peak
    gpu_peak_mb: Mapped[float | None] = mapped_column(Float)
    # True where the OS could not reset the peak per phase: the two peaks are the process's lifetime peak
    peak_is_lifetime: Mapped[bool | None] = mapped_column(Boolean)
    # agreement with fp32 torch on held-out photographs (protocol.Agreement); NULL for layers and imports
    agreement_images: Mapped[int | None]
    agreement_top1: Mapped[float | None] = mapped_column(Float)  # share of matching top-1 classes
    agreement_cosine: Mapped[float | None] = mapped_column(Float)  # mean logit cosine similarity
    agreement_cosine_min: Mapped[float | None] = mapped_column(Float)
    held_out: Mapped[str | None] = mapped_column(String(64))  # the held-out set's identity
    accuracy_top1: Mapped[float | None] = mapped_column(Float)  # on --eval's labelled folder
    eval_images: Mapped[int | None]
    calibration: Mapped[str | None] = mapped_column(String(64))  # the calibration set's identity (int8)
    # how a compiling runtime (torch.compile) built the model (protocol.Compilation); NULL for other runtimes
    compile_mode: Mapped[str | None] = mapped_column(String(32))
    compile_ms: Mapped[float | None] = mapped_column(Float)  # cold: into an empty cache, to the first inferences
    compile_warm_ms: Mapped[float | None] = mapped_column(Float)  # again, from the cache the cold compile filled
    compile_cold_reused: Mapped[bool | None]  # compile_ms measured by an earlier run of its compile key, kept
    graphs: Mapped[int | None]  # graphs compiled while loading: 1 + graph breaks (more if it recompiled then)
    graph_breaks: Mapped[int | None]
    break_reasons: Mapped[list | None] = mapped_column(JSON)  # dynamo's reason per break (first few)
    recompiles: Mapped[int | None]  # graphs compiled while timing: status 'recompiled' when > 0
    artifact_path: Mapped[str | None] = mapped_column(Text)
    artifact_key: Mapped[str | None] = mapped_column(String(64))
    environment: Mapped[dict | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    host: Mapped[Host] = relationship()
    samples: Mapped[list[Sample]] = relationship(back_populates="run", cascade="all, delete-orphan")
    op_profiles: Mapped[list[OpProfile]] = relationship(cascade="all, delete-orphan")

    @property
    def origin(self) -> str:
        """measured (timed by this harness), imported (a vendor tool's log) or published (a paper's figure)."""
        return "published" if self.published else "imported" if self.imported else "measured"

    @property
    def labelled_target(self) -> str:
        """The target, marked where the number was not timed by this harness: what tables and plots show."""
        return self.target if self.origin == "measured" else f"{self.target} ({self.origin})"

    @property
    def recipe(self) -> str:
        """The precision and, for a mixed int8 recipe, the op classes kept in float: "int8+float(conv_dw_7x7)"."""
        return recipe_label(self.precision, self.keep_float)

    @property
    def precise_target(self) -> str:
        """The target with its recipe where that is not fp32: an int8, a mixed int8 and an fp32 run of one target
        are three columns of a table, never one."""
        return self.target if self.precision in ("fp32", "n/a") else f"{self.target} {self.recipe}"

    @property
    def labelled_precise_target(self) -> str:
        return self.labelled_target if self.precision in ("fp32", "n/a") else f"{self.labelled_target} {self.recipe}"

    @property
    def latency_ms(self) -> float | None:
        """The median, or the mean where a vendor tool reported no median."""
        return self.median_ms if self.median_ms is not None else self.mean_ms


class Sample(Base):
    __tablename__ = "samples"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    phase: Mapped[str] = mapped_column(String(8), primary_key=True)  # first | warmup | timed
    iteration: Mapped[int] = mapped_column(Integer, primary_key=True)
    latency_ns: Mapped[int] = mapped_column(BigInteger)
    run: Mapped[Run] = relationship(back_populates="samples")


class OpProfile(Base):
    __tablename__ = "op_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    op_name: Mapped[str] = mapped_column(String(255))  # the runtime's node (or module) name
    op_type: Mapped[str | None] = mapped_column(String(128))  # the runtime's own op type
    op_class: Mapped[str] = mapped_column(String(64), index=True)  # harness.opclass vocabulary
    calls: Mapped[int]  # calls per inference
    total_ms: Mapped[float] = mapped_column(Float)  # milliseconds per inference, all calls together
    compute_unit: Mapped[str | None] = mapped_column(String(16))  # a farm's per-layer unit: NPU, GPU or CPU


class ModelFlops(Base):
    """FLOPs of one forward pass per op class (harness.roofline.class_flops), per model spec."""
    __tablename__ = "model_flops"
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    resolution: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[int] = mapped_column(primary_key=True)
    form: Mapped[str] = mapped_column(String(16), primary_key=True)
    op_class: Mapped[str] = mapped_column(String(64), primary_key=True)
    flops: Mapped[int] = mapped_column(BigInteger)


class CoverageKey:
    """What both coverage tables are keyed by: one model spec's artifact on one backend, and one op of it (its
    type, kernel and depthwise-ness), with the op class it falls in."""
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    resolution: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[int] = mapped_column(primary_key=True)
    form: Mapped[str] = mapped_column(String(16), primary_key=True)
    backend: Mapped[str] = mapped_column(String(32), primary_key=True)
    op_type: Mapped[str] = mapped_column(String(128), primary_key=True)  # the aten op, or the runtime's own type
    kernel: Mapped[int] = mapped_column(primary_key=True)  # convolutions: k of k x k; 0 otherwise
    depthwise: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    op_class: Mapped[str] = mapped_column(String(64), index=True)


class DelegationCoverage(CoverageKey, Base):
    """Which aten ops of a model spec a delegate's partitioner took (per backend), and which fell back
    to the runtime's portable kernels: the same for every run of that artifact."""
    __tablename__ = "delegation_coverage"
    partitioner: Mapped[str] = mapped_column(String(32))  # xnnpack, coreml, ...
    delegated_nodes: Mapped[int]
    portable_nodes: Mapped[int]
    delegated_flops: Mapped[int] = mapped_column(BigInteger)
    portable_flops: Mapped[int] = mapped_column(BigInteger)


class PrecisionCoverage(CoverageKey, Base):
    """Which ops of a model spec's low-precision artifact a runtime computes in int8 and which stay in float,
    from the runtime's own view of it (its compiled model, graph or tensor types)."""
    __tablename__ = "precision_coverage"
    precision: Mapped[str] = mapped_column(String(8), primary_key=True)
    keep_float: Mapped[str] = mapped_column(String(255), primary_key=True, default="", server_default="")
    calibration: Mapped[str | None] = mapped_column(String(64))
    low_nodes: Mapped[int]
    float_nodes: Mapped[int]
    low_flops: Mapped[int] = mapped_column(BigInteger)
    float_flops: Mapped[int] = mapped_column(BigInteger)


class HostPeak(Base):
    """A runtime's measured dense-GEMM throughput on a host: the roof of the roofline."""
    __tablename__ = "host_peaks"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uuid)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    target: Mapped[str] = mapped_column(String(128))
    threads: Mapped[int]
    gflops: Mapped[float] = mapped_column(Float)
    gemm_size: Mapped[int]
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Predictor(Base):
    """A latency predictor fitted for one target of one host (`harness predict fit`): a cost model per kernel kind
    (harness.predict.fit) as data, the per-call overhead, and the runs it was fitted on (by uuid, so a merged
    database keeps them). A prediction is computed from it when asked and never stored as a run."""
    __tablename__ = "predictors"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uuid)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    target: Mapped[str] = mapped_column(String(128))
    threads: Mapped[int]
    precision: Mapped[str] = mapped_column(String(8))
    method: Mapped[str] = mapped_column(String(64))
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    overhead_ms: Mapped[float] = mapped_column(Float)
    costs: Mapped[dict] = mapped_column(JSON)  # kind -> {"coef": [...], "samples": n, "cv_errors": [...]}
    training_runs: Mapped[list] = mapped_column(JSON)  # run uuids
    fusion: Mapped[dict] = mapped_column(JSON, default=dict)  # what timing compositions found fused
    host: Mapped[Host] = relationship()


# The roof: the best dense-GEMM throughput any runtime reached on that host at that thread count.
_LATEST_PEAK = """LEFT JOIN (SELECT host_id, threads, MAX(gflops) AS gflops FROM host_peaks
                   GROUP BY host_id, threads) p ON p.host_id = r.host_id AND p.threads = r.threads"""

VIEWS = {
    # The most recent valid run for each model spec on each target of each host.
    "latest_valid_runs": f"""
        SELECT r.* FROM runs r
        WHERE r.id IN (SELECT MAX(id) FROM runs WHERE status = 'ok' AND layer IS NULL
                       GROUP BY {', '.join(RUN_KEY)})""",
    # The same for layers timed alone (`harness layers`).
    "latest_layer_runs": f"""
        SELECT r.* FROM runs r
        WHERE r.id IN (SELECT MAX(id) FROM runs WHERE status = 'ok' AND layer IS NOT NULL
                       GROUP BY {', '.join(RUN_KEY)})""",
    # What each latest valid run costs besides latency: start-up, size, memory.
    "footprints": """
        SELECT r.id AS run_id, r.host_id, r.model, r.resolution, r.batch, r.form, r.target, r.threads, r.precision,
               r.keep_float, r.median_ms, r.load_ms, r.load_warm_ms, r.build_ms, r.artifact_bytes / 1e6 AS artifact_mb,
               r.param_bytes / 1e6 AS param_mb, r.model_peak_mb, r.rss_before_mb, r.peak_load_mb, r.peak_timing_mb,
               r.gpu_peak_mb, r.imported, r.published
        FROM latest_valid_runs r""",
    # Each latest low-precision run beside the latest fp32 run of the same spec on the same target: what
    # the precision buys in latency and costs in agreement.
    "precision_speedup": """
        SELECT q.host_id, q.model, q.resolution, q.batch, q.form, q.target, q.threads, q.precision, q.keep_float,
               f.median_ms AS fp32_median_ms, q.median_ms, f.median_ms / q.median_ms AS speedup,
               q.agreement_top1, q.agreement_cosine, q.accuracy_top1, f.accuracy_top1 AS fp32_accuracy_top1
        FROM latest_valid_runs q JOIN latest_valid_runs f
          ON f.host_id = q.host_id AND f.model = q.model AND f.resolution = q.resolution AND f.batch = q.batch
         AND f.form = q.form AND f.weights = q.weights AND f.target = q.target AND f.threads = q.threads
        WHERE f.precision = 'fp32' AND q.precision != 'fp32'""",
    # How much faster the fused form is than the multi-branch form, per model and target.
    "reparam_speedup": """
        SELECT t.host_id, t.model, t.resolution, t.batch, t.target, t.threads, t.precision,
               t.median_ms AS train_median_ms, p.median_ms AS reparam_median_ms,
               t.median_ms / p.median_ms AS speedup
        FROM latest_valid_runs t JOIN latest_valid_runs p
          ON p.host_id = t.host_id AND p.model = t.model AND p.resolution = t.resolution
         AND p.batch = t.batch AND p.target = t.target AND p.threads = t.threads AND p.weights = t.weights
         AND p.precision = t.precision
        WHERE t.form = 'train' AND p.form = 'reparam'""",
    # Achieved GFLOP/s of each latest valid run, and its share of the host's best measured GEMM.
    "roofline": f"""
        SELECT r.id AS run_id, r.host_id, r.model, r.resolution, r.batch, r.form, r.target, r.threads,
               r.median_ms, t.flops, t.flops / (r.median_ms * 1e6) AS achieved_gflops, p.gflops AS peak_gflops,
               100.0 * t.flops / (r.median_ms * 1e6) / p.gflops AS percent_of_peak
        FROM latest_valid_runs r
        JOIN (SELECT model, resolution, batch, form, SUM(flops) AS flops FROM model_flops
              GROUP BY model, resolution, batch, form) t
          ON t.model = r.model AND t.resolution = r.resolution AND t.batch = r.batch AND t.form = r.form
        {_LATEST_PEAK}
        WHERE r.median_ms IS NOT NULL""",
    # The same per op class, with each class's time from the run's operator profile.
    "roofline_by_class": f"""
        SELECT r.id AS run_id, r.host_id, r.model, r.resolution, r.form, r.target, r.threads, o.op_class,
               SUM(o.total_ms) AS ms, f.flops, f.flops / (SUM(o.total_ms) * 1e6) AS achieved_gflops,
               p.gflops AS peak_gflops, 100.0 * f.flops / (SUM(o.total_ms) * 1e6) / p.gflops AS percent_of_peak
        FROM latest_valid_runs r
        JOIN op_profiles o ON o.run_id = r.id
        JOIN model_flops f ON f.model = r.model AND f.resolution = r.resolution AND f.batch = r.batch
         AND f.form = r.form AND f.op_class = o.op_class
        {_LATEST_PEAK}
        GROUP BY r.id, r.host_id, r.model, r.resolution, r.form, r.target, r.threads, o.op_class, f.flops, p.gflops""",
}


