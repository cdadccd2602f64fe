"""Reading results: the one rule for "the latest run" that every report, plot and check uses, and
read-only SQL for `harness query`."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .database import QueryError, WriteRefused, is_write_refused
from .schema import RUN_KEY, Run


def run_key(run: Run) -> tuple:
    """The values of RUN_KEY: runs with equal keys measured the same thing on the same machine."""
    return tuple(getattr(run, column) for column in RUN_KEY)


def latest_runs(session: Session, *criteria, valid_only: bool = True) -> list[Run]:
    """The newest run per RUN_KEY among the runs matching `criteria` (SQLAlchemy conditions on Run),
    oldest first. valid_only (the `latest_valid_runs` view's rule): only runs with status ok count;
    else the newest run of any status, so a crash after a good run shows as the crash."""
    newest = select(func.max(Run.id)).where(*criteria).group_by(*(getattr(Run, c) for c in RUN_KEY))
    if valid_only:
        newest = newest.where(Run.status == "ok")
    return list(session.scalars(select(Run).where(Run.id.in_(newest)).order_by(Run.id)))


def latest_repeats(session: Session, *criteria) -> list[list[Run]]:
    """Per RUN_KEY, every valid run of the sweep that made the latest one (several with
    `harness run --repeats N`, each a fresh process), or the latest run alone when no sweep made it."""
    groups = []
    for latest in latest_runs(session, *criteria):
        if latest.sweep_id is None:
            groups.append([latest])
            continue
        same_key = [getattr(Run, c) == getattr(latest, c) for c in RUN_KEY]
        groups.append(list(session.scalars(select(Run).where(*criteria, *same_key, Run.status == "ok",
                                                             Run.sweep_id == latest.sweep_id).order_by(Run.id))))
    return groups


def read_only_query(engine: Engine, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one SQL statement with writes forbidden by the database itself; always rolled back.
    Raises WriteRefused for a statement that writes, QueryError for any other failure."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            result = conn.exec_driver_sql(sql)
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
        except DBAPIError as exc:
            if is_write_refused(exc):
                raise WriteRefused("harness query is read-only; statements that write are refused "
                                   "(the database is unchanged)") from exc
            raise QueryError(f"SQL error: {exc.orig}") from exc
        finally:
            conn.rollback()
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = OFF")
    return columns, rows
