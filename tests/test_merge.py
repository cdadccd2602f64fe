"""`harness merge`: a results file from another machine copied into this database, every run with
its samples, op profile, host, sweep and FLOPs; twice adds nothing; the source is never changed."""
from __future__ import annotations

import hashlib
import json

import pytest
from helpers import HOST, PROFILE, save, schema_5_database
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from harness import store
from harness.cli import app
from harness.spec import ModelSpec


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def totals(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {model.__tablename__: s.scalar(select(func.count()).select_from(model)) for model in (
            store.Run, store.Sample, store.OpProfile, store.Host, store.Sweep, store.HostPeak, store.ModelFlops)}


def a_machine(path) -> None:
    """A results file as another machine leaves it: two hosts, a sweep, a profile, a peak, FLOPs."""
    engine = store.open_engine(str(path))
    sweep = store.start_sweep(engine, "harness run --device cpu")
    save(engine, [10.0] * 30, model="s12", target="openvino/cpu", sweep_id=sweep, op_profile=PROFILE)
    save(engine, [12.0] * 30, model="s12", target="torch/cpu", sweep_id=sweep)
    save(engine, [20.0] * 30, model="sa12", target="litert/android:R58", host={**HOST, "hostname": "phone"})
    store.save_peak(engine, host=HOST, target="torch/cpu", threads=2, gflops=50.0, gemm_size=512)
    with Session(engine) as session, session.begin():
        store.save_model_flops(session, ModelSpec("s12"), {"conv_dw_7x7": 9_000_000_000})  # past 32 bits
    engine.dispose()


def test_a_file_from_another_machine_merges_and_twice_adds_nothing(tmp_path, db, engine):
    source = tmp_path / "lab-machine.db"
    a_machine(source)
    save(engine, [5.0] * 10, model="t8")  # this database has runs of its own
    before = totals(engine)
    result = invoke("merge", source, "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    added = dict((r["rows"], r["count"]) for r in json.loads(result.output))
    assert added == {"runs": 3, "samples": 90, "op_profiles": 2, "hosts": 1, "sweeps": 1, "peaks": 1, "predictors": 0,
                     "flop_rows": 1, "coverage_rows": 0, "runs_present": 0}
    source_engine = store.open_engine(str(source))
    assert {k: totals(engine)[k] - before[k] for k in before} == {
        "runs": 3, "samples": 90, "op_profiles": 2, "hosts": 1, "sweeps": 1, "host_peaks": 1, "model_flops": 1}
    with Session(engine) as mine, Session(source_engine) as theirs:
        copied = {r.uuid: (r.model, r.target, r.median_ms, r.sweep_id is not None)
                  for r in mine.scalars(select(store.Run))}
        for run in theirs.scalars(select(store.Run)):
            assert copied[run.uuid] == (run.model, run.target, run.median_ms, run.sweep_id is not None)
        assert mine.scalar(select(store.ModelFlops.flops)) == 9_000_000_000
    again = json.loads(invoke("merge", source, "--db", db, "--format", "json").output)
    assert {r["rows"]: r["count"] for r in again}["runs"] == 0 and {r["rows"]: r["count"] for r in again}[
        "runs_present"] == 3
    assert totals(engine)["runs"] == before["runs"] + 3 and totals(engine)["samples"] == before["samples"] + 90


def test_an_older_source_merges_and_is_left_as_it_was(tmp_path, db, engine):
    source = tmp_path / "old.db"
    schema_5_database(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    result = invoke("merge", source, "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    assert {r["rows"]: r["count"] for r in json.loads(result.output)}["runs"] == 4
    assert totals(engine)["samples"] == 100
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest  # upgraded in a copy, not in place


def test_a_source_from_a_newer_harness_is_refused_in_one_sentence(tmp_path, db_file):
    source = tmp_path / "newer.db"
    newer = store.open_engine(str(source))
    with newer.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00dface'")
    newer.dispose()
    result = invoke("merge", source, "--db", db_file)
    text = " ".join(result.output.split())
    head = store.database.head_revision()
    assert result.exit_code == 2 and f"newer than this harness knows ({head}); upgrade fastvit-harness" in text
    assert text.count("error:") == 1 and ". " not in text and not db_file.exists()


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "no results database at"),
    (lambda p: p.write_bytes(b""), "holds no harness results"),
])
def test_a_source_that_is_not_a_results_database_is_refused(tmp_path, db_file, make, expected):
    source = tmp_path / "source.db"
    make(source)
    result = invoke("merge", source, "--db", db_file)
    assert result.exit_code == 2 and expected in result.output


def test_a_database_is_not_merged_into_itself(db_file, engine):
    save(store.open_engine(str(db_file)))
    result = invoke("merge", db_file, "--db", db_file)
    assert result.exit_code == 2 and "the same database" in result.output
