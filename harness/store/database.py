"""Opening a results database (SQLite by default, any SQLAlchemy URL), and the errors it raises.

SQLite runs in WAL mode with a busy timeout, so two sweeps can write the same file at once.
Callers get typed errors (StorageError and its subclasses), never a driver's message to parse.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from .schema import SCHEMA_VERSION, VIEWS, Base, Meta

DEFAULT_DB = "results.db"
# Stored values that an older harness classified wrongly, corrected on upgrade (each idempotent).
DATA_FIXES = (
    # schema < 7: a torch container's glue time under a name holding "Conv" (ConvFFN) was a convolution
    "UPDATE op_profiles SET op_class = 'elementwise' WHERE op_type LIKE '%(glue:%' AND op_class != 'elementwise'",
)
BUSY_TIMEOUT_MS = 30_000


class StorageError(RuntimeError):
    """The database cannot be opened or written; the message says which and why."""


class DatabaseMissing(StorageError):
    """A command that only reads was pointed at a database that does not exist (or holds no results)."""


class QueryError(StorageError):
    """A statement given to `read_only_query` failed; the message is the database's."""


class WriteRefused(QueryError):
    """A statement given to `read_only_query` would write (or open another file); refused before it ran."""


class QueryTimeout(QueryError):
    """A statement given to `read_only_query` ran past its time limit and was stopped."""


def database_url(db: str | None = None) -> str:
    """`--db` value, else $HARNESS_DB, else ./results.db; a bare path means SQLite."""
    value = db or os.environ.get("HARNESS_DB") or DEFAULT_DB
    return value if "://" in value else f"sqlite:///{Path(value).expanduser()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def open_engine(db: str | None = None, create: bool = True) -> Engine:
    """Engine with the schema and views in place. create=False (commands that only read): the
    database must exist and hold harness results; DatabaseMissing says so, and nothing is created."""
    url = database_url(db)
    path = sqlite_path(url)
    if not create and path is not None and not path.is_file():
        raise DatabaseMissing(f"no results database at {path}; `harness run --device cpu` makes one "
                              "(or point --db / $HARNESS_DB at yours)")
    try:
        engine = create_engine(url)
    except ImportError as exc:
        raise StorageError(f"cannot use database {url!r}: its driver is not installed ({exc}); for PostgreSQL: "
                           "pip install 'psycopg[binary]' and a postgresql+psycopg:// URL") from exc
    except (SQLAlchemyError, ValueError) as exc:
        raise StorageError(f"cannot use database {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if not create and not inspect(engine).has_table(Meta.__tablename__):
            raise DatabaseMissing(f"{path or url} holds no harness results; `harness run --device cpu` makes some")
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
        for fix in DATA_FIXES:
            conn.execute(text(fix))
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


def is_write_refused(exc: DBAPIError) -> bool:
    """Did the database refuse a write because the connection or transaction is read-only?"""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "25006":  # PostgreSQL: read_only_sql_transaction
        return True
    code = getattr(orig, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF == 8  # SQLITE_READONLY and its extended codes
    return "readonly" in str(orig)  # Python 3.10's sqlite3 exposes no error code
