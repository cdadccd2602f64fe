"""Opening a results database (SQLite by default, any SQLAlchemy URL), and the errors it raises.

Opening brings the database to the newest schema with the Alembic migrations in ./migrations (a
database made before Alembic, schema 1-8, is upgraded by the first of them) and recreates the
views, which are derived from code (schema.VIEWS). A database written by a newer harness is refused.
SQLite runs in WAL mode with a busy timeout, so two sweeps can write the same file at once.
Callers get typed errors (StorageError and its subclasses), never a driver's message to parse.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .schema import VIEWS, Meta

DEFAULT_DB = "results.db"
MIGRATIONS = Path(__file__).with_name("migrations")
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
    """Engine with the newest schema and the views in place. create=False (commands that only read):
    the database must exist and hold harness results; DatabaseMissing says so, and nothing is created."""
    url = database_url(db)
    path = sqlite_path(url)
    if not create and path is not None and not path.is_file():
        raise DatabaseMissing(f"no results database at {path}; `harness run --device cpu` makes one "
                              "(or point --db / $HARNESS_DB at yours)")
    engine = _create_engine(url, url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if not create and not inspect(engine).has_table(Meta.__tablename__):
            raise DatabaseMissing(f"{path or url} holds no harness results; `harness run --device cpu` makes some")
        migrate(engine)
    except DBAPIError as exc:
        raise StorageError(f"cannot open database {url}: {exc.orig}") from exc
    return engine


def open_reader(db: str | None = None) -> Engine:
    """An engine that can only read (the dashboard): SQLite opened read-only with query_only on, PostgreSQL
    sessions whose every transaction is read-only. Nothing is migrated: a database of an older schema is
    refused with the command that upgrades it, one of a newer harness as open_engine refuses it."""
    url = database_url(db)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(f"no results database at {path}; `harness run --device cpu` makes one "
                              "(or point --db / $HARNESS_DB at yours)")
    if path is not None:
        engine = _create_engine(url, f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
        event.listen(engine, "connect", _sqlite_read_only)
    elif url.startswith("postgresql"):
        engine = _create_engine(url, url, connect_args={"options": "-c default_transaction_read_only=on"})
    else:
        engine = _create_engine(url, url)
    revision = known_revision(engine, str(path or url), "; `harness run --device cpu` makes some")
    if revision != head_revision():
        raise StorageError(older_schema(str(path or url), revision, db or url, "the dashboard only reads"))
    return engine


def known_revision(engine: Engine, where: str, remedy: str = "", role: str = "") -> str | None:
    """The schema revision of a database that holds harness results (DatabaseMissing naming `where`, then `remedy`,
    where it holds none), refusing one a newer harness wrote (check_revision). role: what the database is to the
    command ("the source "), where a refusal names it."""
    try:
        if not inspect(engine).has_table(Meta.__tablename__):
            raise DatabaseMissing(f"{where} holds no harness results{remedy}")
        revision = revision_of(engine)
    except DBAPIError as exc:
        raise StorageError(f"cannot read {role}{where}: {exc.orig}") from exc
    check_revision(revision, role + where)
    return revision


def older_schema(where: str, revision: str | None, db: str, why: str) -> str:
    """Why a database of an older schema is refused where it cannot be upgraded, and the command that upgrades it."""
    return (f"{where} has an older schema ({revision or 'from before Alembic'}) and {why}; "
            f"`harness report --db {db}` upgrades it once")


def _create_engine(url: str, connect_to: str, **options) -> Engine:
    """create_engine(connect_to), with StorageError naming `url` (the user's) when it cannot be used."""
    try:
        return create_engine(connect_to, **options)
    except ImportError as exc:
        raise StorageError(f"cannot use database {url!r}: its driver is not installed ({exc}); for PostgreSQL: "
                           "pip install 'psycopg[binary]' and a postgresql+psycopg:// URL") from exc
    except (SQLAlchemyError, ValueError) as exc:
        raise StorageError(f"cannot use database {url!r}: {exc}") from exc


def _sqlite_read_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    """The migrations, read once per process (every open_engine consults them)."""
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    return _scripts().get_current_head()


def revision_of(engine: Engine) -> str | None:
    """The database's schema revision (None: empty, or made before Alembic)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_revision(revision: str | None, where: str) -> None:
    """Refuse a database whose schema this harness does not know: a newer harness wrote it."""
    scripts = _scripts()
    if revision is not None and revision not in {s.revision for s in scripts.walk_revisions()}:
        raise StorageError(f"{where} has schema revision {revision}, newer than this harness knows "
                           f"({scripts.get_current_head()}); upgrade fastvit-harness to use it")


def migrate(engine: Engine) -> None:
    """Apply the migrations this database lacks and recreate the views, in one transaction; if
    another process upgrades it at the same moment, its upgrade stands."""
    head = head_revision()
    current = revision_of(engine)
    check_revision(current, str(engine.url))
    if current == head:
        return
    # SQLite: batch mode copies a table and drops the old one, which foreign keys would refuse; the
    # migrating connection runs without them (PRAGMA foreign_keys cannot change inside a transaction).
    migrating = create_engine(engine.url)
    if migrating.dialect.name == "sqlite":
        event.listen(migrating, "connect", lambda dbapi, _record: _sqlite_pragmas(dbapi, _record, foreign_keys=False))
    try:
        with migrating.begin() as conn:
            _upgrade(conn)
    except DBAPIError:
        if revision_of(engine) != head:
            raise
    finally:
        migrating.dispose()


def _upgrade(conn: Connection) -> None:
    for name in reversed(VIEWS):  # a view on a table being copied would stop SQLite renaming the copy
        conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
    config = _alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    for name, sql in VIEWS.items():
        conn.execute(text(f"CREATE VIEW {name} AS {sql}"))


def _sqlite_pragmas(dbapi_connection, _record, foreign_keys: bool = True) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
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
