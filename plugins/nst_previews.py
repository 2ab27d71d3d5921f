"""When a plugin fetches a preview, and what a failed fetch costs: nothing.

A preview is made on the server only when a client asks, so each one asked for costs the job
time (issue 17). Both plugins therefore ask only when the editor has put the last one on the
canvas (asking faster than frames are shown only makes frames that are never seen) and at most
once per ``INTERVAL_S``. A preview is worth less than the job: a fetch that fails or times out
is skipped, and the job goes on. Shared by the Krita and GIMP plugins (standard library only,
copied beside each like ``nst_client``), so it is unit-tested outside the editors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

try:  # installed inside the Krita plugin's package
    from . import nst_client
except ImportError:  # beside the GIMP plug-in, or plugins/ in the source tree
    import nst_client

#: The server makes at most one preview a second; asking more often gets the same one.
INTERVAL_S = 1.0
#: A preview that takes longer than this is given up: the status polls must go on.
TIMEOUT_S = 5.0


class PreviewPacer:
    """Says when the next preview may be fetched. ``shown()`` may be called from any thread."""

    def __init__(self, interval: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._asked = -float("inf")
        self._shown = threading.Event()
        self._shown.set()  # no frame in flight yet

    def due(self) -> bool:
        """True (and the time is taken) when the last frame is shown and the interval passed."""
        now = self._clock()
        if not self._shown.is_set() or now - self._asked < self._interval:
            return False
        self._asked = now
        return True

    def in_flight(self) -> None:
        """A frame was handed to the editor: wait for ``shown`` before the next fetch."""
        self._shown.clear()

    def shown(self) -> None:
        """The editor has put the last frame on the canvas."""
        self._shown.set()


def fetch(client: nst_client.Client, job_id: str, size: int) -> bytes | None:
    """The job's latest preview (PNG), or None: none yet, or a fetch that failed or timed out
    (skipped, not fatal: the job and its status polls go on)."""
    try:
        return client.preview(job_id, size, timeout=TIMEOUT_S)
    except nst_client.NSTClientError:
        return None
