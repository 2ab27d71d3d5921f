"""One server per data folder: an exclusive lock, taken before any job is recovered.

Two servers on one folder corrupt each other's jobs: a second one re-queued and ran the first
one's running job. The lock is the operating system's (``nst_filelock``, shared with the
plugins' start lock), so it goes with the process, however it ends: a killed server never
leaves a stale lock behind. The lock file also says who holds it, for the message the second
server gives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .paths import private_dir
from .plugins.nst_filelock import try_lock

LOCK_FILE = "server.lock"

class DataFolderBusy(Exception):
    """Another server holds the data folder; the message says which and where."""


class DataLock:
    """The data folder's lock, held from :meth:`acquire` until :meth:`release` or exit."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataLock:
        """Take the lock, or raise DataFolderBusy naming the server that has it."""
        # Opened without truncating: the holder's details must survive a failed attempt.
        fd = os.open(private_dir(data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        if not try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            raise DataFolderBusy(
                f"another nst-server is already running on the data folder {data_dir} "
                f"({holder}); stop it first, or give this one its own --data-dir")
        lock = cls(fd)
        lock.announce(None)
        return lock

    def announce(self, url: str | None) -> None:
        """Record this process, and its address once it listens, for a second server to
        name in its error."""
        # Written from byte 1: on Windows byte 0 is the locked region, which only the
        # holder may touch, and a reader skips it the same way.
        record = json.dumps({"pid": os.getpid(), "url": url}).encode()
        os.lseek(self._fd, 1, os.SEEK_SET)
        os.write(self._fd, record)
        os.ftruncate(self._fd, 1 + len(record))

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = -1


def _holder(fd: int) -> str:
    """Who holds the lock, from what it announced: "pid 123, http://127.0.0.1:8765"."""
    try:
        os.lseek(fd, 1, os.SEEK_SET)
        record = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    pid, url = record.get("pid", "unknown"), record.get("url")
    return f"pid {pid}, listening on {url}" if url else f"pid {pid}, still starting"
