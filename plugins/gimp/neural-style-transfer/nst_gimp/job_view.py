"""What the artist sees while the job runs: a progress display and the live preview frames.

Two progress displays, one interface: GIMP's own progress (status bar, or the batch console)
for scripts and batch runs, whose calls come on the main thread; and the plug-in's progress
window for runs the artist started, whose calls come from the job's worker thread and are
handed to the main loop. :class:`JobView` feeds either from the job's status polls, and asks
for previews as often as ``nst_previews`` allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gi.repository import Gimp

from .arguments import TITLE
from .background import on_main
from .progress_window import ProgressWindow
from .shared import nst_client, nst_options, nst_previews

#: Shows a preview PNG, then calls its second argument once the frame is on the canvas.
ShowFrame = Callable[[bytes, Callable[[], None]], None]


class Progress(Protocol):
    """A progress display: a line of text and a fill from 0.0 to 1.0."""

    def text(self, text: str) -> None: ...

    def fraction(self, fraction: float) -> None: ...


class StatusBarProgress:
    """GIMP's progress, for runs without the artist (scripts, batch): main thread only."""

    def __init__(self) -> None:
        Gimp.progress_init(f"{TITLE}: looking for the server...")

    def text(self, text: str) -> None:
        Gimp.progress_set_text(f"{TITLE}: {text}")

    def fraction(self, fraction: float) -> None:
        Gimp.progress_update(fraction)

    def end(self) -> None:
        Gimp.progress_end()


class WindowProgress:
    """The progress window, fed from the worker thread: each call is run by the main loop."""

    def __init__(self, window: ProgressWindow) -> None:
        self._window = window

    def text(self, text: str) -> None:
        on_main(self._window.set_text, text)

    def fraction(self, fraction: float) -> None:
        on_main(self._window.set_fraction, fraction)


class JobView:
    """Feeds ``progress`` and ``show_frame`` from the job's status polls."""

    def __init__(self, client: nst_client.Client, progress: Progress, show_frame: ShowFrame,
                 size: int) -> None:
        self._client = client
        self._progress = progress
        self._show_frame = show_frame
        self._size = size
        self._pacer = nst_previews.PreviewPacer()
        self._job_id = ""

    def job_started(self, job_id: str) -> None:
        self._job_id = job_id

    def status(self, status: dict) -> None:
        self._progress.text(nst_options.describe_progress(status))
        self._progress.fraction(min(1.0, max(0.0, float(status.get("percent") or 0) / 100.0)))
        if status.get("state") != "running" or not self._pacer.due():
            return
        png = nst_previews.fetch(self._client, self._job_id, self._size)
        if png:
            self._pacer.in_flight()  # the next is asked for once this one is on the canvas
            self._show_frame(png, self._pacer.shown)
