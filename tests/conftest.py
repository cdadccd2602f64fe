import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def db(tmp_path) -> Path:
    """Path of a fresh SQLite results database (created on first open)."""
    return tmp_path / "results.db"


@pytest.fixture
def engine(db):
    from harness import store

    return store.open_engine(str(db))
