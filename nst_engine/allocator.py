"""Large freed blocks kept for reuse on Linux, where glibc's malloc would hand them back.

glibc serves every block above its mmap threshold (which adapts up to 32 MiB) with a fresh
``mmap`` and unmaps it when it is freed, so the next block of that size is faulted in again,
page by page, zeroed by the kernel. An iteration on the CPU allocates and frees its feature
maps and their gradients a few dozen times, and from about 512 px block 1's maps are such
blocks: at 1024 px one thread spent about a third of each iteration on it. Raising the
threshold keeps them in the heap, where the next allocation finds them, and raising the
trim threshold with it stops glibc from handing the heap's free top back to the system at
each free (which it does above 128 KiB once the mmap threshold is set by hand). With the
first alone an iteration at 1024 px still faulted in about 1 GB of pages and took 2.46 s;
with both it faults in none and takes 2.24 s, against 3.61 s with neither (README, "Ninth
measurement").

The price is fragmentation: a run's peak resident memory rose by up to a third. A run
therefore keeps blocks only when its plan leaves :data:`FRAGMENTATION` of room in its
memory budget, and gives the heap's free memory back to the system when it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
from collections.abc import Iterator

#: The room a run's planned peak needs, as a factor, for blocks to be kept. Measured peaks
#: with blocks kept, against without: 1.07 to 1.22 in whole runs, 1.36 for one 2048 px
#: iteration alone; against the plan, 1.31 for a whole 1536 px `full` run (the plan was 7%
#: under even without kept blocks there). README, "Ninth measurement".
FRAGMENTATION = 1.5

# mallopt's parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: The ceiling of glibc's adaptive threshold on 64-bit systems, restored after a run.
_DEFAULT_THRESHOLD = 32 * 2**20
#: The trim threshold glibc's adaptive rule pairs with that ceiling (twice the mmap
#: threshold), restored after a run.
_DEFAULT_TRIM_THRESHOLD = 2 * _DEFAULT_THRESHOLD
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
    on glibc); after it, the thresholds are those of glibc's adaptive ceiling (mmap 32 MiB,
    trim 64 MiB), which they stay at from then on instead of adapting, and the heap's free
    memory is returned."""
    if _GLIBC is None or not keep:
        yield
        return
    _GLIBC.mallopt(_M_MMAP_THRESHOLD, _KEPT_THRESHOLD)
    _GLIBC.mallopt(_M_TRIM_THRESHOLD, _KEPT_THRESHOLD)
    try:
        yield
    finally:
        _GLIBC.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
        _GLIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        _GLIBC.malloc_trim(0)
