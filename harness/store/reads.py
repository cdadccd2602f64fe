"""Reading results: the one rule for "the latest run" that every report, plot and check uses, and
read-only SQL for `harness query`."""
from __future__ import annotations

import sqlite3
import time
from contextlib import nullcontext

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .database import QueryError, QueryTimeout, WriteRefused, is_write_refused
from .schema import RUN_KEY, DelegationCoverage, PrecisionCoverage, Run, key_of

QUERY_TIMEOUT_S = 60.0  # `harness query --timeout` default


def latest_runs(session: Session, *criteria, valid_only: bool = True, layers: bool = False) -> list[Run]:
    """The newest run per RUN_KEY among the runs matching `criteria` (SQLAlchemy conditions on Run),
    oldest first. valid_only (the `latest_valid_runs` view's rule): only runs with status ok count;
    else the newest run of any status, so a crash after a good run shows as the crash. Whole-model
    runs, or with `layers` the layers timed alone (`latest_layer_runs`)."""
    newest = select(func.max(Run.id)).where(*criteria, Run.layer.is_not(None) if layers else Run.layer.is_(None))
    newest = newest.group_by(*(getattr(Run, c) for c in RUN_KEY))
    if valid_only:
        newest = newest.where(Run.status == "ok")
    return list(session.scalars(select(Run).where(Run.id.in_(newest)).order_by(Run.id)))


def latest_repeats(session: Session, *criteria) -> list[list[Run]]:
    """Per RUN_KEY, every valid run of the sweep that made the latest one (several with
    `harness run --repeats N`, each a fresh process), or the latest run alone when no sweep made it.
    Two queries however many keys: the latest runs, then every valid run of their sweeps."""
    latest = latest_runs(session, *criteria)
    sweeps = {run.sweep_id for run in latest if run.sweep_id is not None}
    same_sweep: dict[tuple, list[Run]] = {}
    if sweeps:
        for run in session.scalars(select(Run).where(*criteria, Run.layer.is_(None), Run.status == "ok",
                                                     Run.sweep_id.in_(sweeps)).order_by(Run.id)):
            same_sweep.setdefault((run.sweep_id, *key_of(run)), []).append(run)
    return [[run] if run.sweep_id is None else same_sweep[(run.sweep_id, *key_of(run))] for run in latest]


def coverage(session: Session, model: str, resolution: int, form: str, batch: int = 1) -> list[DelegationCoverage]:
    """Every backend's delegation coverage of one model spec, by backend then largest FLOPs first."""
    return list(session.scalars(select(DelegationCoverage).filter_by(
        model=model, resolution=resolution, form=form, batch=batch).order_by(
        DelegationCoverage.backend, (DelegationCoverage.delegated_flops + DelegationCoverage.portable_flops).desc(),
        DelegationCoverage.op_type)))


def precision_coverage(session: Session, model: str, resolution: int, form: str, batch: int = 1
                       ) -> list[PrecisionCoverage]:
    """Every backend's int8 coverage of one model spec, by backend then largest FLOPs first."""
    return list(session.scalars(select(PrecisionCoverage).filter_by(
        model=model, resolution=resolution, form=form, batch=batch).order_by(
        PrecisionCoverage.backend, PrecisionCoverage.precision, PrecisionCoverage.keep_float,
        (PrecisionCoverage.low_flops + PrecisionCoverage.float_flops).desc(), PrecisionCoverage.op_type)))


def count_runs(engine: Engine, *criteria) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count(Run.id)).where(*criteria))


# What a read-only SQLite statement may do (sqlite3 authorizer action codes); everything else, ATTACH
# (which VACUUM INTO starts with) and every write among it, is refused before the statement runs.
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_TRANSACTION,
                 sqlite3.SQLITE_SAVEPOINT}
# PRAGMAs that describe the schema, with a table or index name as their argument ...
_SCHEMA_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
                   "foreign_key_list"}
# ... and PRAGMAs that only read when given no value.
_VALUE_PRAGMAS = {"database_list", "collation_list", "function_list", "pragma_list", "compile_options",
                  "user_version", "schema_version", "data_version", "page_count", "page_size"}
_REFUSED_FUNCTIONS = {"load_extension"}
_ACTION_NAMES = {getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ") for name in (
    "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
    "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE", "DROP_INDEX", "DROP_TABLE", "DROP_TEMP_INDEX",
    "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW", "INSERT", "UPDATE",
    "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE", "CREATE_VTABLE", "DROP_VTABLE")}


class _SqliteGuard:
    """While installed on a connection: an authorizer that allows reading only, and a progress
    handler that stops the statement after `timeout_s`. Records what it refused and whether it
    stopped the statement; removed on exit (the connection goes back to the pool)."""

    def __init__(self, dbapi_connection, timeout_s: float):
        self.connection, self.timeout_s = dbapi_connection, timeout_s
        self.refused: list[str] = []
        self.stopped = False

    def _authorize(self, action, arg1, arg2, _db, _trigger) -> int:
        if action == sqlite3.SQLITE_PRAGMA:
            if arg1 in _SCHEMA_PRAGMAS or (arg1 in _VALUE_PRAGMAS and arg2 is None):
                return sqlite3.SQLITE_OK
            refused = f"PRAGMA {arg1}"
        elif action == sqlite3.SQLITE_FUNCTION:
            if arg2 not in _REFUSED_FUNCTIONS:
                return sqlite3.SQLITE_OK
            refused = f"{arg2}()"
        elif action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        else:
            refused = _ACTION_NAMES.get(action, f"action {action}")
        self.refused.append(refused)
        return sqlite3.SQLITE_DENY

    def _progress(self) -> bool:
        self.stopped = time.monotonic() > self.deadline
        return self.stopped

    def __enter__(self) -> _SqliteGuard:
        self.deadline = time.monotonic() + self.timeout_s
        self.connection.set_authorizer(self._authorize)
        self.connection.set_progress_handler(self._progress, 10_000)
        return self

    def __exit__(self, *exc) -> None:
        self.connection.set_authorizer(None)
        self.connection.set_progress_handler(None, 0)


def _postgres_read_only(conn, timeout_s: float) -> None:
    """A read-only transaction with a statement timeout. A superuser could still write server files
    from one (COPY ... TO, lo_export), so a superuser's query runs as pg_read_all_data (PostgreSQL 14+):
    every table readable, no file or superuser rights."""
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
    if conn.exec_driver_sql("SELECT current_setting('is_superuser')").scalar() == "on":
        if conn.dialect.server_version_info < (14,):
            raise QueryError("harness query will not run as a PostgreSQL superuser before PostgreSQL 14 (it could "
                             "write server files); connect as a role that may only read")
        conn.exec_driver_sql("SET LOCAL ROLE pg_read_all_data")


def read_only_query(engine: Engine, sql: str, timeout_s: float = QUERY_TIMEOUT_S) -> tuple[list[str], list[tuple]]:
    """Run one SQL statement that may only read: it cannot write, attach, create or load any file,
    and is stopped after `timeout_s`. Always rolled back. Raises WriteRefused, QueryTimeout, or
    QueryError for any other failure."""
    with engine.connect() as conn:
        guard = None
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
            guard = _SqliteGuard(conn.connection.driver_connection, timeout_s)
        elif engine.dialect.name == "postgresql":
            _postgres_read_only(conn, timeout_s)
        try:
            with guard or nullcontext():
                result = conn.exec_driver_sql(sql)
                columns = list(result.keys()) if result.returns_rows else []
                rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
        except DBAPIError as exc:
            # PostgreSQL: 25006 in a read-only transaction; 42501 for what needs file rights (COPY TO, lo_export)
            if (guard and guard.refused) or is_write_refused(exc) or getattr(exc.orig, "sqlstate", None) == "42501":
                what = f" ({', '.join(dict.fromkeys(guard.refused))})" if guard and guard.refused else ""
                raise WriteRefused(f"harness query is read-only: the statement would write or open a file{what}; "
                                   "it was refused and nothing changed") from exc
            if (guard and guard.stopped) or getattr(exc.orig, "sqlstate", None) == "57014":  # PG: query_canceled
                raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped; narrow it or "
                                   "raise --timeout") from exc
            raise QueryError(f"SQL error: {exc.orig}") from exc
        finally:
            conn.rollback()
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = OFF")
    return columns, rows
