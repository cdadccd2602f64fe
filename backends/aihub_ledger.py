"""The AI Hub jobs this user's harness submitted: one SQLite file per user (not beside an artifact, which a cache
clear or an upgrade of the client or of a runtime replaces), keyed by what the service sees: the uploaded model's
bytes, the options, the runtime, the device's name and OS, and for a measurement its input and which repetition it
is. A job id is written, in a transaction of its own, as soon as its submit call returns; a lock file per key
makes look-up, submit and write one step, so two runs (on two devices, or on the same one) never submit a job
twice, and neither loses the other's ids.

Each entry is `submitted` (waited on by whichever run comes next), `failed` (the model's own failure, kept: a
compile the service refused) or `forgotten` (a failure that was not the model's: the next run submits the job
again and says so).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ENVIRONMENT = "HARNESS_AIHUB_LEDGER"  # another file (a test's, a team's shared disk)
SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('submitted', 'failed', 'forgotten')),
    failure TEXT,
    submitted_at TEXT NOT NULL
)"""


def default_path() -> Path:
    """$HARNESS_AIHUB_LEDGER, else $XDG_STATE_HOME (~/.local/state)/fastvit-harness/aihub-jobs.sqlite."""
    explicit = os.environ.get(ENVIRONMENT)
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "fastvit-harness" / "aihub-jobs.sqlite"


@dataclass(frozen=True)
class Entry:
    job_id: str
    failure: str | None  # the kept failure's message (state 'failed')
    submitted_at: datetime


class Ledger:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)  # autocommit: one statement each
        conn.execute("PRAGMA busy_timeout = 60000")
        return conn

    @contextmanager
    def holding(self, key: str):
        """The lock on one key, held while a run looks it up, submits its job and writes the id."""
        locks = self.path.parent / "locks"
        locks.mkdir(exist_ok=True)
        with open(locks / hashlib.sha256(key.encode()).hexdigest()[:32], "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def get(self, key: str) -> Entry | None:
        """The job of `key` that is submitted or kept failed; None where there is none (or it was forgotten)."""
        with self._connect() as conn:
            row = conn.execute("SELECT job_id, state, failure, submitted_at FROM jobs WHERE key = ?", (key,)).fetchone()
        if row is None or row[1] == "forgotten":
            return None
        return Entry(row[0], row[2] if row[1] == "failed" else None, datetime.fromisoformat(row[3]))

    def forgotten(self, key: str) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE key = ?", (key,)).fetchone()
        return bool(row and row[0] in ("forgotten", "failed"))

    def put(self, key: str, job_id: str) -> None:
        with self._connect() as conn:
            conn.execute("INSERT INTO jobs (key, job_id, state, submitted_at) VALUES (?, ?, 'submitted', ?) "
                         "ON CONFLICT(key) DO UPDATE SET job_id = excluded.job_id, state = 'submitted', "
                         "failure = NULL, submitted_at = excluded.submitted_at",
                         (key, job_id, datetime.now(timezone.utc).isoformat()))

    def keep_failure(self, key: str, message: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET state = 'failed', failure = ? WHERE key = ?", (message, key))

    def forget(self, key: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET state = 'forgotten', failure = NULL WHERE key = ?", (key,))

    def entries(self) -> list[tuple[str, str, str]]:
        """(key, job id, state) of every job, oldest first."""
        with self._connect() as conn:
            return conn.execute("SELECT key, job_id, state FROM jobs ORDER BY submitted_at").fetchall()
