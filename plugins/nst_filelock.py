"""A non-blocking, exclusive lock on an open file, from the operating system.

Shared by the server (its data-folder lock) and by both plugins (``nst_launcher``'s start
lock), standard library only. The operating system's lock goes with the process however it
ends, so a killed server or editor never leaves a stale lock behind.
"""

from __future__ import annotations

import os

__all__ = ["try_lock", "unlock"]

if os.name == "nt":
    import msvcrt

    def try_lock(fd: int) -> bool:
        """Lock ``fd`` (byte 0) if no other process holds it; False if one does."""
        os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the file's position
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(fd: int) -> None:
        """Release a lock taken with :func:`try_lock` (closing ``fd`` does too)."""
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def try_lock(fd: int) -> bool:
        """Lock ``fd`` if no other process holds it; False if one does."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(fd: int) -> None:
        """Release a lock taken with :func:`try_lock` (closing ``fd`` does too)."""
        fcntl.flock(fd, fcntl.LOCK_UN)
