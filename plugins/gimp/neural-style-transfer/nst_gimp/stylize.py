"""One run of the filter: read the layer, let the server paint it, add the result layer."""

from __future__ import annotations

import functools

from gi.repository import Gimp

from .arguments import TITLE, ChoiceError, Choices
from .formats import UnsupportedPrecision
from .layers import LayerError, add_result_layer, read_source
from .preview import PreviewLayer, remove_left_over
from .shared import nst_client, nst_launcher, nst_options, nst_previews
from .watchdog import cancel_if_killed

# Failures whose message tells the artist what to do; anything else is a bug and shows as one.
ARTIST_ERRORS = (nst_client.NSTClientError, ChoiceError, LayerError, UnsupportedPrecision)
#: The longest side of the previews asked for (the layer's own size when smaller).
PREVIEW_SIZE = 512


def _show_text(text: str) -> None:
    Gimp.progress_set_text(f"{TITLE}: {text}")


class _JobView:
    """What the artist sees while the job runs: GIMP's progress bar (status bar, or the batch
    console) and the preview layer, fed with previews as often as ``nst_previews`` allows."""

    def __init__(self, client: nst_client.Client, preview: PreviewLayer, size: int) -> None:
        self._client = client
        self._preview = preview
        self._size = size
        self._pacer = nst_previews.PreviewPacer()
        self._job_id = ""

    def job_started(self, job_id: str) -> None:
        self._job_id = job_id

    def status(self, status: dict) -> None:
        _show_text(nst_options.describe_progress(status))
        Gimp.progress_update(min(1.0, max(0.0, float(status.get("percent") or 0) / 100.0)))
        if status.get("state") != "running" or not self._pacer.due():
            return
        png = nst_previews.fetch(self._client, self._job_id, self._size)
        if png:
            self._preview.show(png)  # on the canvas when this returns: the next may come


def stylize(image: Gimp.Image, drawables: list, choices: Choices) -> Gimp.Layer:
    """Stylise the one selected layer; the image is changed only if this returns.

    The server is started first if none answers. GIMP stays responsive meanwhile (a plug-in is
    a process of its own); its progress bar's Cancel button ends the run by killing the
    plug-in, and the watchdog held while the job runs then cancels the server's job; the
    preview layer that leaves is removed by the next run.
    """
    remove_left_over(image)
    source = read_source(image, drawables, choices.selection_only)
    request = nst_client.StyleRequest(
        source.pixels,
        source.width,
        source.height,
        source.layout,
        [choices.style],
        choices.settings,
        source.mask,
    )
    Gimp.progress_init(f"{TITLE}: looking for the server...")
    preview = PreviewLayer(source, nst_options.preview_layer_name(choices.style))
    try:
        client = nst_launcher.ensure_server(on_status=_show_text)
        _show_text("sending the layer to the server...")
        view = _JobView(client, preview, min(PREVIEW_SIZE, max(source.width, source.height)))
        pixels = nst_client.run_job(
            client,
            request,
            on_status=view.status,
            on_job_id=view.job_started,
            while_running=functools.partial(cancel_if_killed, client),
        )
    finally:
        preview.remove()
        Gimp.progress_end()
    return add_result_layer(source, nst_options.layer_name(choices.style), pixels)
