"""`harness merge`: copy another results database's runs, with everything measured with them, into
this one. Rows are matched by identity, never by id: hosts by their facts, sweeps, runs and GEMM
peaks by the UUID each got when it was made; FLOP counts and delegation coverage by their keys.
Merging the same source twice adds nothing, and an interrupted merge resumes where it stopped
(runs are copied in batches, each batch one transaction).
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .database import (DatabaseMissing, StorageError, database_url, head_revision, known_revision, older_schema,
                       open_engine, sqlite_path)
from .schema import (HOST_IDENTITY, DelegationCoverage, Host, HostPeak, ModelFlops, OpProfile, PrecisionCoverage, Predictor, Run,
                     Sample, Sweep)
from .writes import find_or_add_host

RUNS_PER_TRANSACTION = 200
SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_file(path: Path) -> bool:
    """True for a SQLite database file (or an empty file, which SQLite treats as an empty database)."""
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    return head in (SQLITE_HEADER, b"")


@dataclass
class Merged:
    """What one merge added (and the runs it found already present)."""
    runs: int = 0
    samples: int = 0
    op_profiles: int = 0
    hosts: int = 0
    sweeps: int = 0
    peaks: int = 0
    predictors: int = 0
    flop_rows: int = 0
    coverage_rows: int = 0
    runs_present: int = 0


@contextmanager
def open_source(db: str) -> Iterator[Engine]:
    """The source, at this harness's schema, without changing it: a SQLite file of an older schema is
    upgraded in a temporary copy; a server database of an older schema is refused (open it with this
    harness once, which upgrades it). A newer schema is refused either way."""
    url = database_url(db)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(f"no results database at {path}")
    if path is not None and not is_sqlite_file(path):
        raise StorageError(f"{path} is not a SQLite database (a results database starts with SQLite's header)")
    probe = create_engine(url)
    try:
        revision = known_revision(probe, str(path or url), role="the source ")
    finally:
        probe.dispose()
    scratch = None
    if revision == head_revision():
        engine = create_engine(url)
    elif path is not None:
        scratch = Path(tempfile.mkdtemp(prefix="harness-merge-"))
        with sqlite3.connect(path) as src, sqlite3.connect(scratch / path.name) as dst:
            src.backup(dst)  # consistent even while a sweep writes the source
        engine = open_engine(str(scratch / path.name))
    else:
        raise StorageError(older_schema(f"the source {url}", revision, url, "a merge reads it as it is (upgraded, "
                                        "it merges)"))
    try:
        yield engine
    finally:
        engine.dispose()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def merge(source: Engine, dest: Engine) -> Merged:
    if source.url == dest.url:
        raise StorageError("the source and the destination are the same database")
    merged = Merged()
    with source.connect() as src, dest.begin() as dst:
        hosts = _hosts(src, dst, merged)
        sweeps = _by_uuid(src, dst, Sweep, {}, merged, "sweeps")
        _by_uuid(src, dst, HostPeak, {"host_id": hosts}, merged, "peaks")
        _by_uuid(src, dst, Predictor, {"host_id": hosts}, merged, "predictors")
        merged.flop_rows = _by_key(src, dst, ModelFlops)
        merged.coverage_rows = _by_key(src, dst, DelegationCoverage) + _by_key(src, dst, PrecisionCoverage)
    with source.connect() as src:
        with dest.connect() as dst:
            present = set(dst.scalars(select(Run.uuid)))
        batch: list[dict] = []
        for row in src.execute(select(Run.__table__).order_by(Run.id)).mappings():
            if row["uuid"] in present:
                merged.runs_present += 1
                continue
            batch.append(dict(row))
            if len(batch) == RUNS_PER_TRANSACTION:
                _copy_runs(src, dest, batch, hosts, sweeps, merged)
                batch = []
        if batch:
            _copy_runs(src, dest, batch, hosts, sweeps, merged)
    return merged


def _hosts(src: Connection, dst: Connection, merged: Merged) -> dict[int, int]:
    """Source host id -> destination host id, adding the hosts the destination lacks."""
    with Session(bind=dst) as session:  # joins dst's transaction
        before = session.scalar(select(func.count(Host.id)))
        mapping = {row["id"]: find_or_add_host(session, {c: row[c] for c in HOST_IDENTITY})
                   for row in src.execute(select(Host.__table__)).mappings()}
        merged.hosts = session.scalar(select(func.count(Host.id))) - before
    return mapping


def _by_uuid(src: Connection, dst: Connection, model, remap: dict[str, dict[int, int]], merged: Merged,
             counter: str) -> dict[int, int]:
    """Copy the rows of `model` whose UUID the destination lacks (foreign keys through `remap`);
    returns source id -> destination id for every row."""
    table = model.__table__
    found = dict(dst.execute(select(table.c.uuid, table.c.id)).all())
    mapping = {}
    for row in src.execute(select(table)).mappings():
        if row["uuid"] not in found:
            values = {k: (remap[k][v] if k in remap else v) for k, v in row.items() if k != "id"}
            found[row["uuid"]] = dst.execute(table.insert().values(**values).returning(table.c.id)).scalar_one()
            setattr(merged, counter, getattr(merged, counter) + 1)
        mapping[row["id"]] = found[row["uuid"]]
    return mapping


def _by_key(src: Connection, dst: Connection, model) -> int:
    """Copy the rows of a table keyed by what they describe (a model spec's FLOPs, a delegate's
    coverage), keeping the destination's row where both have one; returns how many were added."""
    table = model.__table__
    key = [c.name for c in table.primary_key.columns]
    found = {tuple(r) for r in dst.execute(select(*(table.c[k] for k in key)))}
    rows = [dict(r) for r in src.execute(select(table)).mappings() if tuple(r[k] for k in key) not in found]
    if rows:
        dst.execute(table.insert(), rows)
    return len(rows)


def _copy_runs(src: Connection, dest: Engine, runs: list[dict], hosts: dict[int, int], sweeps: dict[int, int],
               merged: Merged) -> None:
    """One transaction: these runs, with their samples and op profiles."""
    run_table, samples, ops = Run.__table__, Sample.__table__, OpProfile.__table__
    source_ids = [r["id"] for r in runs]
    with dest.begin() as dst:
        new_ids = {}
        for run in runs:
            values = {**run, "host_id": hosts[run["host_id"]],
                      "sweep_id": sweeps.get(run["sweep_id"]) if run["sweep_id"] is not None else None}
            del values["id"]
            new_ids[run["id"]] = dst.execute(run_table.insert().values(**values)
                                             .returning(run_table.c.id)).scalar_one()
        sample_rows = [{**dict(r), "run_id": new_ids[r["run_id"]]}
                       for r in src.execute(select(samples).where(samples.c.run_id.in_(source_ids))).mappings()]
        op_rows = [{**{k: v for k, v in r.items() if k != "id"}, "run_id": new_ids[r["run_id"]]}
                   for r in src.execute(select(ops).where(ops.c.run_id.in_(source_ids))).mappings()]
        if sample_rows:
            dst.execute(samples.insert(), sample_rows)
        if op_rows:
            dst.execute(ops.insert(), op_rows)
    merged.runs += len(runs)
    merged.samples += len(sample_rows)
    merged.op_profiles += len(op_rows)
