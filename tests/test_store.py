"""Storage guarantees: one transaction per run, concurrent writers, read-only queries, the one
"latest run" rule, and upgrades that keep every run."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import HOST, PROFILE, save, schema_5_database, timed_result
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harness import store
from harness.spec import ModelSpec, Target

REPO = Path(__file__).resolve().parent.parent


def counts(engine) -> tuple[int, int]:
    with Session(engine) as s:
        return s.scalar(select(func.count(store.Run.id))), s.scalar(select(func.count()).select_from(store.Sample))


def samples(n: int = 50) -> list[float]:
    return [1.0 + i * 1e-6 for i in range(n)]


def test_run_and_samples_are_stored(engine):
    run_id = save(engine, samples(), warmup=5, first_ms=5.0)
    with Session(engine) as s:
        run = s.get(store.Run, run_id)
        assert run.iterations == 50 and run.warmup_iterations == 5 and run.first_ms == 5.0
        assert run.median_ms == pytest.approx(1.0000245)
        phases = sorted({x.phase for x in run.samples})
        assert phases == ["first", "timed", "warmup"] and len(run.samples) == 56


def test_failed_write_leaves_no_partial_run(engine):
    save(engine, samples(), warmup=5, first_ms=5.0)
    bad = timed_result(samples())
    bad.samples_ns = bad.samples_ns[:10] + [None]  # NOT NULL violation on the 11th sample
    with pytest.raises(Exception):
        store.save_run(engine, bad, spec=ModelSpec("t8"), target=Target("torch", "cpu"), threads=2, precision="fp32",
                       host=HOST)
    assert counts(engine) == (1, 56)


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    from helpers import save
    from harness import store
    engine = store.open_engine({db!r})
    for _ in range({runs}):
        save(engine, [1.0] * {samples}, warmup=5, first_ms=5.0)
""")


def writer(db: Path, runs: int, samples: int) -> subprocess.Popen:
    code = WRITER.format(repo=str(REPO), tests=str(REPO / "tests"), db=str(db), runs=runs, samples=samples)
    return subprocess.Popen([sys.executable, "-c", code])


def test_killed_writer_leaves_only_whole_runs(db, engine):
    proc = writer(db, runs=10_000, samples=3000)
    deadline = time.time() + 60
    while counts(engine)[0] < 3 and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    runs, samples = counts(engine)
    assert runs >= 3
    assert samples == runs * (1 + 5 + 3000)  # every stored run is complete


def test_two_writers_at_once(db, engine):
    procs = [writer(db, runs=25, samples=500) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert counts(engine) == (50, 50 * 506)


@pytest.mark.parametrize("sql", ["DELETE FROM runs", "INSERT INTO hosts(hostname, cpu_model, os, machine) "
                                 "VALUES ('a','b','c','d')", "DROP TABLE samples", "CREATE TABLE x(a int)",
                                 "UPDATE runs SET median_ms = 0"])
def test_query_refuses_writes(engine, sql):
    save(engine, samples(), warmup=5, first_ms=5.0)
    with pytest.raises(store.WriteRefused, match="read-only"):
        store.read_only_query(engine, sql)
    assert counts(engine) == (1, 56)
    assert store.read_only_query(engine, "SELECT median_ms FROM runs")[1][0][0] > 0
    save(engine)  # the connection's read-only switch does not leak into later writes
    assert counts(engine)[0] == 2


def test_query_errors_are_typed(engine):
    with pytest.raises(store.QueryError, match='no such table: missing_table|relation "missing_table" does not exist'
                       ) as caught:
        store.read_only_query(engine, "SELECT * FROM missing_table")
    assert not isinstance(caught.value, store.WriteRefused)


def test_views(engine):
    save(engine, [1.0] * 5)
    save(engine, [1.0] * 5)
    save(engine, [2.0] * 5, form="train")
    save(engine, [9.0] * 5, form="train", status="invalid")  # never the latest valid run
    columns, rows = store.read_only_query(engine, "SELECT id, form FROM latest_valid_runs ORDER BY id")
    assert rows == [(2, "reparam"), (3, "train")]
    columns, rows = store.read_only_query(engine, "SELECT speedup FROM reparam_speedup")
    assert rows[0][0] == pytest.approx(2.0)


def test_the_latest_run_rule_is_the_views(engine):
    """latest_runs (what every reader uses) picks exactly what the latest_valid_runs view holds."""
    for target in ("torch/cpu", "openvino/cpu"):
        for ms in (3.0, 2.0, 1.0):
            save(engine, [ms] * 3, target=target)
        save(engine, [ms] * 3, target=target, threads=1)  # another thread count: a run of its own
        save(engine, [5.0] * 3, target=target, status="crashed")
    save(engine, [1.0] * 3, host={**HOST, "hostname": "other"})
    _, view = store.read_only_query(engine, "SELECT id FROM latest_valid_runs ORDER BY id")
    with Session(engine) as session:
        assert [r.id for r in store.latest_runs(session)] == [i for (i,) in view]
        assert [r.status for r in store.latest_runs(session, valid_only=False)].count("crashed") == 2
        torch_only = store.latest_runs(session, store.Run.target == "torch/cpu")
        assert [(r.host_id, r.threads, r.median_ms) for r in torch_only] == [(1, 2, 1.0), (1, 1, 1.0), (2, 2, 1.0)]


def test_latest_repeats_are_the_runs_of_the_latest_sweep(engine):
    old, new = store.start_sweep(engine, "old"), store.start_sweep(engine, "new")
    save(engine, [9.0] * 3, sweep_id=old)
    repeats = [save(engine, [ms] * 3, sweep_id=new) for ms in (1.0, 2.0, 3.0)]
    save(engine, [4.0] * 3, sweep_id=new, status="error")
    save(engine, [1.0] * 3, target="openvino/cpu")  # no sweep: on its own
    with Session(engine) as session:
        groups = store.latest_repeats(session)
        assert sorted([r.id for r in g] for g in groups) == sorted([repeats, [6]])


def test_unreadable_database(tmp_path):
    garbage = tmp_path / "not.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(store.StorageError, match="cannot open database"):
        store.open_engine(str(garbage))
    with pytest.raises(store.StorageError):
        store.open_engine("nosuchdialect://x")


def test_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DB", raising=False)
    assert store.database_url(None) == "sqlite:///results.db"
    monkeypatch.setenv("HARNESS_DB", "postgresql://u@h/db")
    assert store.database_url(None) == "postgresql://u@h/db"
    assert store.database_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"


def test_a_database_from_before_alembic_is_upgraded_and_keeps_every_run(db_file):
    schema_5_database(db_file)
    engine = store.open_engine(str(db_file))
    assert counts(engine) == (4, 100)
    assert store.database.revision_of(engine) == store.database.head_revision()
    assert store.read_only_query(engine, "SELECT op_class FROM op_profiles")[1] == [("elementwise",)]
    _, rows = store.read_only_query(engine, "SELECT r.id, h.isa, r.uuid, r.log, r.published FROM runs r "
                                            "JOIN hosts h ON h.id = r.host_id ORDER BY r.id")
    # each ISA a run recorded is a host of its own; the run that recorded none keeps the old row
    assert [(run_id, isa) for run_id, isa, *_ in rows] == [
        (1, ""), (2, "avx2"), (3, "avx2 avx512f avx512_bf16"), (4, "avx2")]
    assert len({uuid for *_, uuid, _, _ in rows}) == 4 and all(log is None and not published
                                                               for *_, log, published in rows)
    # the latest run per host is now per ISA: three hosts, three latest runs
    assert sorted(r[0] for r in store.read_only_query(engine, "SELECT id FROM latest_valid_runs")[1]) == [1, 3, 4]
    assert store.read_only_query(engine, "SELECT MIN(latency_ns) FROM samples")[1] == [(3_000_000_000,)]


def test_the_migrations_make_exactly_the_tables_the_code_uses(engine):
    """An empty database migrated to head and the ORM's tables agree (columns, types, indexes, keys)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, store.schema.Base.metadata) == []


def test_a_database_from_a_newer_harness_is_refused(db, engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00dface'")
    with pytest.raises(store.StorageError, match="newer than this harness knows"):
        store.open_engine(str(db))


def test_roofline_views(engine):
    run_id = save(engine, [10.0] * 5, model="sa12", target="openvino/cpu", op_profile=PROFILE)
    with Session(engine) as session, session.begin():
        store.save_model_flops(session, ModelSpec("sa12"), {"conv_dw_7x7": 20_000_000, "conv_pointwise": 300_000_000})
    for target, gflops in (("openvino/cpu", 100.0), ("torch/cpu", 50.0)):
        store.save_peak(engine, host=HOST, target=target, threads=2, gflops=gflops, gemm_size=1024)
    _, rows = store.read_only_query(engine, "SELECT run_id, achieved_gflops, peak_gflops, percent_of_peak "
                                            "FROM roofline")
    assert rows == [(run_id, pytest.approx(32.0), 100.0, pytest.approx(32.0))]  # 0.32 GFLOP in 10 ms; best roof
    _, rows = store.read_only_query(engine, "SELECT op_class, ms, achieved_gflops, percent_of_peak "
                                            "FROM roofline_by_class ORDER BY op_class")
    assert rows == [("conv_dw_7x7", 1.0, pytest.approx(20.0), pytest.approx(20.0)),
                    ("conv_pointwise", 3.0, pytest.approx(100.0), pytest.approx(100.0))]


@pytest.mark.parametrize("sql, refused", [
    ("ATTACH DATABASE '{dir}/attached.db' AS other", "ATTACH"),
    ("VACUUM INTO '{dir}/copy.db'", "ATTACH"),  # VACUUM INTO attaches its target first
    ("SELECT load_extension('{dir}/evil')", "load_extension()"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode"),
    ("PRAGMA user_version = 7", "PRAGMA user_version"),
    ("CREATE TEMP TABLE scratch(a)", "INSERT"),  # its row in sqlite_temp_master, refused first
])
def test_query_opens_creates_and_loads_no_file(db_file, tmp_path, sql, refused):
    engine = store.open_engine(str(db_file))
    save(engine)
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(store.WriteRefused, match=f"would write or open a file \\({refused}"):
        store.read_only_query(engine, sql.format(dir=outside))
    assert list(outside.iterdir()) == []  # nothing created, attached or written
    assert counts(engine) == (1, 5)


def test_query_may_read_the_schema(engine):
    if engine.dialect.name == "sqlite":
        columns, rows = store.read_only_query(engine, "PRAGMA table_info(runs)")
        assert "name" in columns and "log" in {r[columns.index("name")] for r in rows}
    else:
        _, rows = store.read_only_query(engine, "SELECT column_name FROM information_schema.columns "
                                                "WHERE table_name = 'runs'")
        assert ("log",) in rows
    assert store.read_only_query(engine, "SELECT COUNT(*) FROM latest_valid_runs")[1] == [(0,)]


def test_a_runaway_query_is_stopped(engine):
    start = time.monotonic()
    with pytest.raises(store.QueryTimeout, match="ran longer than 0.5 s"):
        store.read_only_query(engine, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                      "SELECT COUNT(*) FROM c WHERE x < 50000000", timeout_s=0.5)
    assert time.monotonic() - start < 10
    save(engine)  # the connection's guard does not outlive the query
    assert store.read_only_query(engine, "SELECT COUNT(*) FROM runs")[1] == [(1,)]


def test_commands_that_only_read_never_create_a_database(tmp_path):
    typo = tmp_path / "typo.db"
    with pytest.raises(store.DatabaseMissing, match=f"no results database at {typo}"):
        store.open_engine(str(typo), create=False)
    assert not typo.exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes(a)").connection.commit()
    with pytest.raises(store.DatabaseMissing, match="holds no harness results"):
        store.open_engine(str(other), create=False)
    _, tables = store.read_only_query(store.open_engine(str(tmp_path / "new.db")), "SELECT name FROM sqlite_master")
    assert ("runs",) in tables  # a command that stores runs creates one


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
@pytest.mark.parametrize("sql", ["COPY runs TO '{dir}/copy.csv'", "SELECT pg_read_file('/etc/hostname')",
                                 "SELECT lo_export(lo_from_bytea(0, 'x'), '{dir}/blob')"])
def test_query_on_postgresql_touches_no_server_file(engine, tmp_path, sql):
    """A read-only transaction alone would let a superuser write server files; the query runs as
    pg_read_all_data."""
    save(engine)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    outside.chmod(0o777)  # the server's user could write here, were it allowed to
    with pytest.raises(store.WriteRefused, match="read-only"):
        store.read_only_query(engine, sql.format(dir=outside))
    assert list(outside.iterdir()) == [] and counts(engine) == (1, 5)
    assert store.read_only_query(engine, "SELECT COUNT(*) FROM latest_valid_runs")[1] == [(1,)]
