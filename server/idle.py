"""Stopping a server that nobody uses: no request and no job for a while.

Why: a server an editor started (see :mod:`nst_server.launch`) has nobody to stop it, and it
holds VGG-19 in memory (hundreds of MB, or GPU memory) for as long as it runs. It stops itself
after the idle time instead, and the next Stylize starts it again. A server started by hand
runs until it is stopped, unless ``--idle-timeout`` is given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Activity:
    """When the server was last in use: a request came in, or a job was queued or running.

    ``busy`` says whether a job is queued or running now; a job counts as use for as long as
    it lasts, so a long job is never cut short by the idle time."""

    def __init__(self, busy: Callable[[], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._busy = busy
        self._clock = clock
        self._last = clock()

    def touch(self) -> None:
        """Note a request (called for each one)."""
        self._last = self._clock()

    def idle_for(self) -> float:
        """Seconds since the last request or job; 0 while a job is queued or running."""
        if self._busy():
            self.touch()
        return self._clock() - self._last


def stop_when_idle(activity: Activity, timeout_s: float, stop: Callable[[], None],
                   halt: threading.Event) -> threading.Thread:
    """Call ``stop`` once ``activity`` has been idle for ``timeout_s`` seconds; a daemon
    thread checks a few times per idle period (at most every 30 s) until ``halt`` is set."""
    poll = min(30.0, timeout_s / 4)

    def watch() -> None:
        while not halt.wait(poll):
            if activity.idle_for() >= timeout_s:
                log.info("no request and no job for %s: stopping (--idle-timeout)",
                         _minutes(timeout_s))
                stop()
                return

    thread = threading.Thread(target=watch, daemon=True, name="nst-idle")
    thread.start()
    return thread


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"
