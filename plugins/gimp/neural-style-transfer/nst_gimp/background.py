"""Run the blocking server job on a worker thread while GTK's main loop keeps a window alive.

libgimp's wire to GIMP is not thread-safe, and GTK is not either: every libgimp or PDB call
(the preview layer, the result layer, displays_flush) and every widget call stays on the main
thread. The worker only talks HTTP to the server and hands the rest to the main loop with
:func:`on_main`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from gi.repository import GLib

T = TypeVar("T")


def on_main(function: Callable[..., Any], *args: Any) -> None:
    """Call ``function(*args)`` once on the main thread, from the main loop (any thread may
    ask; calls run in the order asked)."""

    def once() -> bool:
        function(*args)
        return GLib.SOURCE_REMOVE

    GLib.idle_add(once)


def run_in_background(work: Callable[[], T]) -> T:
    """``work()`` on a worker thread, the main loop running meanwhile; its value, or its
    exception raised here. Everything ``work`` handed to :func:`on_main` has run when this
    returns: the loop stops only after those calls."""
    loop = GLib.MainLoop()
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised on the main thread below
            outcome["error"] = exc
        finally:
            on_main(loop.quit)

    # A daemon, so a plug-in that GIMP ends some other way is not held open by it.
    thread = threading.Thread(target=worker, name="nst-job", daemon=True)
    thread.start()
    loop.run()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
