"""Results storage: SQLAlchemy 2 ORM over SQLite (default `./results.db`) or any SQLAlchemy URL.

Every run is written in one transaction together with its samples, so an interrupted sweep keeps
each finished run and never leaves half of one. SQLite runs in WAL mode with a busy timeout, so
two sweeps can write the same file at once.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint,
                        create_engine, event, inspect, select, text)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

DEFAULT_DB = "results.db"
BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = 5  # bump when a column or view changes; open_engine upgrades older databases


class StorageError(RuntimeError):
    """The database cannot be opened or written; the message says which and why."""


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("hostname", "cpu_model", "logical_cores", "os", "machine"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    cpu_model: Mapped[str] = mapped_column(String(255))
    logical_cores: Mapped[int | None]
    os: Mapped[str] = mapped_column(String(255))
    machine: Mapped[str] = mapped_column(String(64))


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(primary_key=True)
    command: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished | interrupted


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
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
    threads: Mapped[int]
    # outcome: ok | invalid (outputs disagree with torch) | error | crashed
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    imported: Mapped[bool] = mapped_column(Boolean, default=False)
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
    artifact_path: Mapped[str | None] = mapped_column(Text)
    artifact_key: Mapped[str | None] = mapped_column(String(64))
    environment: Mapped[dict | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    samples: Mapped[list[Sample]] = relationship(back_populates="run", cascade="all, delete-orphan")

    @property
    def latency_ms(self) -> float | None:
        """The median, or the mean where a vendor tool reported no median."""
        return self.median_ms if self.median_ms is not None else self.mean_ms
    op_profiles: Mapped[list[OpProfile]] = relationship(cascade="all, delete-orphan")


class Sample(Base):
    __tablename__ = "samples"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    phase: Mapped[str] = mapped_column(String(8), primary_key=True)  # first | warmup | timed
    iteration: Mapped[int] = mapped_column(Integer, primary_key=True)
    latency_ns: Mapped[int]
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


class ModelFlops(Base):
    """FLOPs of one forward pass per op class (harness.roofline.class_flops), per model spec."""
    __tablename__ = "model_flops"
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    resolution: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[int] = mapped_column(primary_key=True)
    form: Mapped[str] = mapped_column(String(16), primary_key=True)
    op_class: Mapped[str] = mapped_column(String(64), primary_key=True)
    flops: Mapped[int]


class HostPeak(Base):
    """A runtime's measured dense-GEMM throughput on a host: the roof of the roofline."""
    __tablename__ = "host_peaks"
    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    target: Mapped[str] = mapped_column(String(128))
    threads: Mapped[int]
    gflops: Mapped[float] = mapped_column(Float)
    gemm_size: Mapped[int]
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The roof: the best dense-GEMM throughput any runtime reached on that host at that thread count.
_LATEST_PEAK = """LEFT JOIN (SELECT host_id, threads, MAX(gflops) AS gflops FROM host_peaks
                   GROUP BY host_id, threads) p ON p.host_id = r.host_id AND p.threads = r.threads"""

VIEWS = {
    # The most recent valid run for each model spec on each target of each host.
    "latest_valid_runs": """
        SELECT r.* FROM runs r
        WHERE r.status = 'ok' AND r.id = (
            SELECT MAX(r2.id) FROM runs r2
            WHERE r2.status = 'ok' AND r2.host_id = r.host_id AND r2.target = r.target
              AND r2.model = r.model AND r2.resolution = r.resolution AND r2.batch = r.batch
              AND r2.form = r.form AND r2.weights = r.weights AND r2.threads = r.threads
              AND r2.precision = r.precision)""",
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


def database_url(db: str | None = None) -> str:
    """`--db` value, else $HARNESS_DB, else ./results.db; a bare path means SQLite."""
    value = db or os.environ.get("HARNESS_DB") or DEFAULT_DB
    return value if "://" in value else f"sqlite:///{Path(value).expanduser()}"


def open_engine(db: str | None = None) -> Engine:
    """Engine with the schema and views in place (created on first use)."""
    url = database_url(db)
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"cannot use database {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        Base.metadata.create_all(engine)
        if _schema_version(engine) != SCHEMA_VERSION:
            try:
                _upgrade(engine)
            except DBAPIError:
                if _schema_version(engine) != SCHEMA_VERSION:  # else another process just upgraded it
                    raise
    except DBAPIError as exc:
        raise StorageError(f"cannot open database {url}: {exc.orig}") from exc
    return engine


def _schema_version(engine: Engine) -> int:
    with Session(engine) as session:
        row = session.get(Meta, "schema_version")
        return int(row.value) if row else 0


def _upgrade(engine: Engine) -> None:
    """Bring an older database to SCHEMA_VERSION: add missing (nullable or defaulted) columns and
    recreate the views, in one transaction. Changes so far have all been additive."""
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = column.default.arg if column.default is not None else None
                clause = f" DEFAULT '{default}'" if isinstance(default, str) else (
                    f" DEFAULT {int(default)}" if isinstance(default, (bool, int)) else "")
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{clause}"))
        for name, sql in VIEWS.items():
            conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
            conn.execute(text(f"CREATE VIEW {name} AS {sql}"))
        conn.execute(Meta.__table__.delete().where(Meta.key == "schema_version"))
        conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def now() -> datetime:
    return datetime.now(timezone.utc)


def start_sweep(engine: Engine, command: str) -> int:
    with Session(engine) as session, session.begin():
        sweep = Sweep(command=command, started_at=now())
        session.add(sweep)
        session.flush()
        return sweep.id


def finish_sweep(engine: Engine, sweep_id: int, status: str) -> None:
    with Session(engine) as session, session.begin():
        sweep = session.get(Sweep, sweep_id)
        sweep.finished_at, sweep.status = now(), status


def _host_id(session: Session, facts: dict) -> int:
    found = session.scalar(select(Host.id).filter_by(**facts))
    if found is not None:
        return found
    try:
        with session.begin_nested():  # another sweep may be inserting the same host right now
            host = Host(**facts)
            session.add(host)
        return host.id
    except IntegrityError:
        return session.scalar(select(Host.id).filter_by(**facts))


def save_run(engine: Engine, *, sweep_id: int | None, host: dict, spec: dict, target: dict, threads: int,
             result: dict, summary: dict | None, precision: str = "fp32") -> int:
    """Write one run and all its samples in a single transaction; returns the run id."""
    samples = [("first", 0, result["first_ns"])] if result.get("first_ns") is not None else []
    samples += [("warmup", i, ns) for i, ns in enumerate(result.get("warmup_ns") or [])]
    samples += [("timed", i, ns) for i, ns in enumerate(result.get("samples_ns") or [])]
    started = result.get("started_at")
    finished = result.get("finished_at")
    with Session(engine) as session, session.begin():
        run = Run(
            sweep_id=sweep_id, host_id=_host_id(session, host), **spec,
            target=target.get("name") or f"{target['backend']}/{target['device']}",
            backend=target["backend"], device=target["device"], threads=threads, precision=precision,
            status=result["status"], error=result.get("error"), imported=bool(result.get("imported")),
            parity_max_abs=result.get("parity_max_abs"), parity_rel=result.get("parity_rel"),
            first_ms=result["first_ns"] / 1e6 if result.get("first_ns") is not None else None,
            warmup_iterations=len(result.get("warmup_ns") or []) or None,
            iterations=len(result.get("samples_ns") or []) or (summary or {}).get("count"),
            **{k: v for k, v in (summary or {}).items() if k != "count"},
            artifact_path=result.get("artifact_path"), artifact_key=result.get("artifact_key"),
            environment=_environment(result),
            started_at=datetime.fromtimestamp(started, timezone.utc) if started else now(),
            finished_at=datetime.fromtimestamp(finished, timezone.utc) if finished else now(),
        )
        run.samples = [Sample(phase=p, iteration=i, latency_ns=int(ns)) for p, i, ns in samples]
        run.op_profiles = [OpProfile(**row) for row in result.get("op_profile") or []]
        if result.get("class_flops"):
            save_model_flops(session, spec, result["class_flops"])
        session.add(run)
        session.flush()
        return run.id


def save_model_flops(session: Session, spec: dict, flops: dict[str, int]) -> None:
    """Record (or refresh) a model spec's FLOPs per op class; identical for every run of it."""
    for op_class, value in flops.items():
        session.merge(ModelFlops(model=spec["model"], resolution=spec["resolution"], batch=spec["batch"],
                                 form=spec["form"], op_class=op_class, flops=int(value)))


def save_peak(engine: Engine, *, host: dict, target: str, threads: int, gflops: float, gemm_size: int) -> int:
    with Session(engine) as session, session.begin():
        peak = HostPeak(host_id=_host_id(session, host), target=target, threads=threads, gflops=gflops,
                        gemm_size=gemm_size, measured_at=now())
        session.add(peak)
        session.flush()
        return peak.id


def _environment(result: dict) -> dict | None:
    env = {**(result.get("environment") or {}), **(result.get("environment_extra") or {})}
    return json.loads(json.dumps(env, default=str)) if env else None


def read_only_query(engine: Engine, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one SQL statement with writes forbidden by the database itself; always rolled back."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            result = conn.exec_driver_sql(sql)
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
        finally:
            conn.rollback()
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = OFF")
    return columns, rows
