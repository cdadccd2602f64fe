"""Storage guarantees: one transaction per run, concurrent writers, read-only queries."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from harness import storage
from harness.stats import summarize

REPO = Path(__file__).resolve().parent.parent
HOST = {"hostname": "h", "cpu_model": "cpu", "logical_cores": 2, "os": "Linux", "machine": "x86_64"}
SPEC = {"model": "t8", "resolution": 256, "batch": 1, "form": "reparam", "weights": "random:0"}
TARGET = {"backend": "torch", "device": "cpu"}


def result(n: int = 50) -> dict:
    samples = [1_000_000 + i for i in range(n)]
    return {"status": "ok", "first_ns": 5_000_000, "warmup_ns": samples[:5], "samples_ns": samples}


def save(engine, n: int = 50) -> int:
    r = result(n)
    return storage.save_run(engine, sweep_id=None, host=HOST, spec=SPEC, target=TARGET, threads=2, result=r,
                            summary=summarize(r["samples_ns"]).as_dict())


def counts(engine) -> tuple[int, int]:
    with Session(engine) as s:
        return s.scalar(select(func.count(storage.Run.id))), s.scalar(select(func.count()).select_from(storage.Sample))


def test_run_and_samples_are_stored(tmp_path):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    run_id = save(engine)
    with Session(engine) as s:
        run = s.get(storage.Run, run_id)
        assert run.iterations == 50 and run.warmup_iterations == 5 and run.first_ms == 5.0
        assert run.median_ms == pytest.approx(1.0000245)
        phases = sorted({x.phase for x in run.samples})
        assert phases == ["first", "timed", "warmup"] and len(run.samples) == 56


def test_failed_write_leaves_no_partial_run(tmp_path):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    save(engine)
    bad = result()
    bad["samples_ns"] = bad["samples_ns"][:10] + [None]  # NOT NULL violation on the 11th sample
    with pytest.raises(Exception):
        storage.save_run(engine, sweep_id=None, host=HOST, spec=SPEC, target=TARGET, threads=2, result=bad,
                         summary=None)
    assert counts(engine) == (1, 56)


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    from test_storage import save
    from harness import storage
    engine = storage.open_engine({db!r})
    for _ in range({runs}):
        save(engine, {samples})
""")


def writer(db: Path, runs: int, samples: int) -> subprocess.Popen:
    code = WRITER.format(repo=str(REPO), tests=str(REPO / "tests"), db=str(db), runs=runs, samples=samples)
    return subprocess.Popen([sys.executable, "-c", code])


def test_killed_writer_leaves_only_whole_runs(tmp_path):
    db = tmp_path / "r.db"
    storage.open_engine(str(db))
    proc = writer(db, runs=10_000, samples=3000)
    engine = storage.open_engine(str(db))
    deadline = time.time() + 60
    while counts(engine)[0] < 3 and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    runs, samples = counts(engine)
    assert runs >= 3
    assert samples == runs * (1 + 5 + 3000)  # every stored run is complete


def test_two_writers_at_once(tmp_path):
    db = tmp_path / "r.db"
    storage.open_engine(str(db))
    procs = [writer(db, runs=25, samples=500) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert counts(storage.open_engine(str(db))) == (50, 50 * 506)


@pytest.mark.parametrize("sql", ["DELETE FROM runs", "INSERT INTO hosts(hostname, cpu_model, os, machine) "
                                 "VALUES ('a','b','c','d')", "DROP TABLE samples", "CREATE TABLE x(a int)",
                                 "UPDATE runs SET median_ms = 0"])
def test_query_refuses_writes(tmp_path, sql):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    save(engine)
    with pytest.raises(DBAPIError, match="readonly"):
        storage.read_only_query(engine, sql)
    assert counts(engine) == (1, 56)
    assert storage.read_only_query(engine, "SELECT median_ms FROM runs")[1][0][0] > 0
    save(engine)  # the connection's read-only switch does not leak into later writes
    assert counts(engine)[0] == 2


def test_views(tmp_path):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    save(engine)
    save(engine)
    train = result()
    train["samples_ns"] = [2 * s for s in train["samples_ns"]]
    storage.save_run(engine, sweep_id=None, host=HOST, spec={**SPEC, "form": "train"}, target=TARGET, threads=2,
                     result=train, summary=summarize(train["samples_ns"]).as_dict())
    columns, rows = storage.read_only_query(engine, "SELECT id, form FROM latest_valid_runs ORDER BY id")
    assert rows == [(2, "reparam"), (3, "train")]
    columns, rows = storage.read_only_query(engine, "SELECT speedup FROM reparam_speedup")
    assert rows[0][0] == pytest.approx(2.0)


def test_unreadable_database(tmp_path):
    garbage = tmp_path / "not.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(storage.StorageError, match="cannot open database"):
        storage.open_engine(str(garbage))
    with pytest.raises(storage.StorageError):
        storage.open_engine("nosuchdialect://x")


def test_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DB", raising=False)
    assert storage.database_url(None) == "sqlite:///results.db"
    monkeypatch.setenv("HARNESS_DB", "postgresql://u@h/db")
    assert storage.database_url(None) == "postgresql://u@h/db"
    assert storage.database_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
