"""Job records in SQLite and job files on disk: what lets an accepted job survive anything.

A job is written here, inputs first, before ``POST /v1/jobs`` answers 202, so a server that is
killed at any moment afterwards still knows the job on its next start and can run it again from
its stored inputs. The record holds the state and metadata; the folder ``jobs/<id>/`` holds the
uploaded bytes exactly as sent, the result, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .paths import private_dir, private_file

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
#: The name of a finished job's result in its folder; every other file there is an input.
RESULT = "result"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
TERMINAL = frozenset({DONE, FAILED, CANCELLED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL,
    state         TEXT NOT NULL,
    created       REAL NOT NULL,
    started       REAL,
    finished      REAL,
    fetched       REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    settings      TEXT NOT NULL,
    style_weights TEXT,
    styles        INTEGER NOT NULL,
    form          TEXT NOT NULL,
    has_mask      INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
"""


@dataclass(frozen=True)
class JobRecord:
    """One row of the ``jobs`` table."""

    id: str
    seq: int
    state: str
    created: float
    settings: str  # JSON of the engine's Settings.to_dict()
    styles: int
    form: str  # JSON of imagecodec.Form: how the content was sent, so the result matches it
    has_mask: bool
    total: int  # iterations over all scales
    style_weights: str | None = None
    started: float | None = None
    finished: float | None = None
    fetched: float | None = None
    attempts: int = 0
    error: str | None = None

    @property
    def settings_dict(self) -> dict[str, Any]:
        return json.loads(self.settings)

    @property
    def blend(self) -> list[float] | None:
        return json.loads(self.style_weights) if self.style_weights else None


_COLUMNS = tuple(f.name for f in fields(JobRecord))


class JobStore:
    """SQLite rows plus one folder per job. Safe to call from any thread."""

    def __init__(self, data_dir: Path) -> None:
        # Uploaded art and results are the user's own: folders 0700 and files 0600, also
        # where an older version left them readable by other users of the machine.
        self.data_dir = private_dir(data_dir)
        self.jobs_dir = private_dir(data_dir / "jobs")
        database = data_dir / "jobs.sqlite3"
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
        for path in (database, *data_dir.glob("jobs.sqlite3-*")):  # SQLite's -wal and -shm
            private_file(path)
        self._lock = threading.Lock()
        # SQLite makes its -wal and -shm files with the database's permissions.
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            # WAL + synchronous=FULL: a committed row survives the process being killed.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    # --- files ------------------------------------------------------------------------

    def folder(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def write_file(self, job_id: str, name: str, data: bytes) -> None:
        """Atomically, and flushed to disk: a half-written result must never be served."""
        target = private_dir(self.folder(job_id)) / name
        partial = target.with_name(f".{name}.partial")
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)

    def read_file(self, job_id: str, name: str) -> bytes:
        return (self.folder(job_id) / name).read_bytes()

    def delete_inputs(self, job_id: str) -> None:
        """Remove what was uploaded for a job that has ended: only a rerun needs it, and a
        cancelled or failed job's inputs would otherwise fill the disk for a week."""
        for path in self.folder(job_id).glob("*"):
            if path.name != RESULT:
                path.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        """Bytes free on the data folder's disk."""
        return shutil.disk_usage(self.data_dir).free

    def disk_usage(self) -> dict[str, int]:
        """Bytes free on the data folder's disk, and bytes held by job files."""
        jobs = 0
        for path in self.jobs_dir.glob("*/*"):
            # Files go while we count: a job's inputs when it ends, a whole job when it expires.
            with contextlib.suppress(FileNotFoundError):
                jobs += path.stat().st_size
        return {"free_bytes": self.free_bytes(), "jobs_bytes": jobs}

    # --- rows ---------------------------------------------------------------------------

    def next_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
        return int(row[0])

    def add(self, record: JobRecord) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        values = [getattr(record, name) for name in _COLUMNS]
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                             values)

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def update(self, job_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?",
                             [*changes.values(), job_id])

    def transition(self, job_id: str, from_states: tuple[str, ...], **changes: Any) -> bool:
        """Change a job only if it is still in one of ``from_states`` (True if it was).

        Cancel and finish race each other from different threads; this makes the first one
        win and the second one a no-op, without a lock held across the engine's work."""
        assignments = ", ".join(f"{name} = ?" for name in changes)
        marks = ", ".join("?" for _ in from_states)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({marks})",
                [*changes.values(), job_id, *from_states])
        return cursor.rowcount == 1

    def in_states(self, *states: str) -> list[JobRecord]:
        """Jobs in the given states, oldest submission first."""
        marks = ", ".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY seq", states).fetchall()
        return [_record(row) for row in rows]

    def expired(self, now: float, fetched_ttl: float, unfetched_ttl: float) -> list[str]:
        """Finished jobs whose results were fetched ``fetched_ttl`` ago, or never fetched and
        finished ``unfetched_ttl`` ago."""
        marks = ", ".join("?" for _ in TERMINAL)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE state IN ({marks}) AND ("
                f"(fetched IS NOT NULL AND fetched < ?) OR "
                f"(fetched IS NULL AND finished < ?))",
                [*TERMINAL, now - fetched_ttl, now - unfetched_ttl]).fetchall()
        return [row[0] for row in rows]

    def orphans(self) -> list[str]:
        """Job folders without a row: a crash after a job's files were written and before
        its row was, or a deletion that could not remove the whole folder."""
        with self._lock:
            known = {row[0] for row in self._db.execute("SELECT id FROM jobs").fetchall()}
        return [path.name for path in self.jobs_dir.iterdir()
                if path.is_dir() and path.name not in known]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _record(row: sqlite3.Row) -> JobRecord:
    values = dict(row)
    values["has_mask"] = bool(values["has_mask"])
    return JobRecord(**values)
