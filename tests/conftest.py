import itertools
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import postgres  # noqa: E402  (tests/ is on the path only from here)

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session. Skipped (with the reason) where none is installed,
    unless HARNESS_REQUIRE_POSTGRES=1 (CI), where its absence fails the tests instead."""
    try:
        server = postgres.start()
    except (FileNotFoundError, OSError) as exc:
        if os.environ.get("HARNESS_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL tests need a server: {exc}")
    # A session ended by SIGTERM (`timeout`, a CI runner) skips fixture teardown: stop the server first, then
    # end as SIGTERM would have, so no server outlives the tests that started it.
    def stop_then_terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        postgres.stop(server)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop_then_terminate)
    try:
        yield server
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        postgres.stop(server)


@pytest.fixture
def db_file(tmp_path) -> Path:
    """Path of a fresh SQLite results database (created on first open): for what only a file has."""
    return tmp_path / "results.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A fresh, empty results database, as `--db` takes it: a SQLite path, or a new database on the
    session's PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        yield tmp_path / "results.db"
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"results_{os.getpid()}_{next(_databases)}"
    admin = server.url().replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def engine(db):
    from harness import store

    engine = store.open_engine(str(db))
    yield engine
    engine.dispose()
