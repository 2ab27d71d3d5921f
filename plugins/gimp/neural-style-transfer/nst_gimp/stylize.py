"""One run of the filter: read the layer, let the server paint it, add the result layer."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from gi.repository import Gimp

from .arguments import PROCEDURE, TITLE, ChoiceError, Choices
from .background import on_main, run_in_background
from .formats import UnsupportedPrecision
from .job_view import JobView, Progress, ShowFrame, StatusBarProgress, WindowProgress
from .layers import LayerError, add_result_layer, read_source
from .preview import PreviewLayer, remove_left_over
from .progress_window import ProgressWindow
from .shared import nst_client, nst_launcher, nst_options
from .watchdog import cancel_if_killed

# Failures whose message tells the artist what to do; anything else is a bug and shows as one.
ARTIST_ERRORS = (nst_client.NSTClientError, ChoiceError, LayerError, UnsupportedPrecision)
#: The longest side of the previews asked for (the layer's own size when smaller).
PREVIEW_SIZE = 512
#: The progress window's title (the dialog before it is titled TITLE alone).
PROGRESS_TITLE = f"{TITLE}: progress"


class Cancelled(Exception):
    """The artist pressed Cancel in the progress window; the image is as it was."""


def stylize(image: Gimp.Image, drawables: list, choices: Choices,
            interactive: bool = False) -> Gimp.Layer:
    """Stylise the one selected layer; the image is changed only if this returns.

    The server is started first if none answers. ``interactive`` (the artist started the run)
    shows the plug-in's progress window, whose Cancel raises :class:`Cancelled` once the job
    is cancelled and the preview removed. Otherwise GIMP's progress is used, as scripts
    expect; its Cancel kills the plug-in, and then the watchdog held while the job runs
    cancels the server's job, and the next run removes the preview layer left behind.
    """
    remove_left_over(image)
    source = read_source(image, drawables, choices.selection_only)
    request = nst_client.StyleRequest(source.pixels, source.width, source.height,
                                      source.layout, [choices.style], choices.settings,
                                      source.mask)
    preview = PreviewLayer(source, nst_options.preview_layer_name(choices.style))
    size = min(PREVIEW_SIZE, max(source.width, source.height))
    try:
        if interactive:
            pixels = _in_window(request, preview, size)
        else:
            pixels = _with_status_bar(request, preview, size)
    finally:
        preview.remove()
    return add_result_layer(source, nst_options.layer_name(choices.style), pixels)


def _run_job(request: nst_client.StyleRequest, progress: Progress, show_frame: ShowFrame,
             size: int, should_cancel: Callable[[], bool] | None = None) -> bytes:
    """Find or start the server and run the job; blocks (on a worker thread when interactive).

    The watchdog is held while the job runs: should the plug-in be killed anyway (GIMP's
    status-bar Cancel, or GIMP quitting), it cancels the server's job."""
    client = nst_launcher.ensure_server(on_status=progress.text)
    if should_cancel is not None and should_cancel():
        raise Cancelled  # before sending: no job to cancel yet
    progress.text("sending the layer to the server...")
    view = JobView(client, progress, show_frame, size)
    return nst_client.run_job(client, request, on_status=view.status,
                              on_job_id=view.job_started, should_cancel=should_cancel,
                              while_running=functools.partial(cancel_if_killed, client))


def _with_status_bar(request: nst_client.StyleRequest, preview: PreviewLayer,
                     size: int) -> bytes:
    """The job on the main thread, with GIMP's progress (scripts and batch runs)."""
    progress = StatusBarProgress()

    def show_frame(png: bytes, shown: Callable[[], None]) -> None:
        preview.show(png)
        shown()

    try:
        return _run_job(request, progress, show_frame, size)
    finally:
        progress.end()


def _in_window(request: nst_client.StyleRequest, preview: PreviewLayer, size: int) -> bytes:
    """The job on a worker thread, with the progress window; raises Cancelled on its Cancel.

    Cancel removes the preview at once (the image looks as before while the server confirms)
    and asks the worker to cancel the job at its next status poll; the run ends when it has."""
    stop = threading.Event()  # Cancel pressed: no more frames, and no result

    def cancel() -> None:
        stop.set()
        preview.remove()

    def show_on_main(png: bytes, shown: Callable[[], None]) -> None:
        if not stop.is_set():
            preview.show(png)
        shown()

    def show_frame(png: bytes, shown: Callable[[], None]) -> None:
        on_main(show_on_main, png, shown)

    window = ProgressWindow(PROCEDURE, PROGRESS_TITLE, cancel)
    window.set_text("looking for the server...")
    try:
        pixels = run_in_background(functools.partial(
            _run_job, request, WindowProgress(window), show_frame, size, stop.is_set))
    except (Cancelled, *ARTIST_ERRORS):
        if stop.is_set():
            raise Cancelled from None  # whatever the worker met on its way out
        raise
    finally:
        window.close()
    if stop.is_set():
        raise Cancelled  # the result came as Cancel was pressed: the artist said no
    return pixels
