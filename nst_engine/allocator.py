"""Large freed blocks kept for reuse on Linux, where glibc's malloc would hand them back.

glibc serves every block above its mmap threshold (which adapts up to 32 MiB) with a fresh
``mmap`` and unmaps it when it is freed, so the next block of that size is faulted in again,
page by page, zeroed by the kernel. An iteration on the CPU allocates and frees its feature
maps and their gradients a few dozen times, and from about 512 px block 1's maps are such
blocks: at 1024 px one thread spent about a quarter of each iteration on it (3.40 s against
2.50 s with the blocks kept; README, "Eighth measurement"). Raising the threshold keeps
them in the heap, where the next allocation finds them.

The price is fragmentation: a run's peak resident memory rose by up to a fifth. A run
therefore keeps blocks only when its plan leaves :data:`FRAGMENTATION` of room in its
memory budget, and gives the heap's free memory back to the system when it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
from collections.abc import Iterator

#: Peak memory with blocks kept, against without, at most (measured 1.07 to 1.20).
FRAGMENTATION = 1.3

# mallopt's parameters, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: The ceiling of glibc's adaptive threshold on 64-bit systems, restored after a run.
_DEFAULT_THRESHOLD = 32 * 2**20
#: The largest threshold mallopt takes (an int): every feature map stays in the heap.
_KEPT_THRESHOLD = 2**31 - 1


def _load_glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)  # the process's own symbols, glibc's among them
    except OSError:
        return None


_GLIBC = _load_glibc()


def share_main_heap() -> None:
    """Make threads created from now on allocate from the main heap.

    glibc gives other threads heaps of their own, which cannot hold a block over 64 MiB:
    those are mapped afresh whatever the threshold, so a job run by a server's worker
    thread gained nothing until its thread shared the main heap. Call it before the
    threads that run jobs start."""
    if _GLIBC is not None:
        _GLIBC.mallopt(_M_ARENA_MAX, 1)


@contextlib.contextmanager
def large_blocks_kept(keep: bool) -> Iterator[None]:
    """Within the block, freed blocks of any size stay in the heap for reuse (with ``keep``,
    on glibc); after it, the threshold is glibc's adaptive ceiling (32 MiB), which it stays
    at from then on instead of adapting, and the heap's free memory is returned."""
    if _GLIBC is None or not keep:
        yield
        return
    _GLIBC.mallopt(_M_MMAP_THRESHOLD, _KEPT_THRESHOLD)
    try:
        yield
    finally:
        _GLIBC.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
        _GLIBC.malloc_trim(0)
