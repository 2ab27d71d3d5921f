"""One run of the filter: read the layer, let the server paint it, add the result layer."""

from __future__ import annotations

import functools

from gi.repository import Gimp

from .arguments import TITLE, ChoiceError, Choices
from .formats import UnsupportedPrecision
from .layers import LayerError, add_result_layer, read_source
from .shared import nst_client, nst_options
from .watchdog import cancel_if_killed

# Failures whose message tells the artist what to do; anything else is a bug and shows as one.
ARTIST_ERRORS = (nst_client.NSTClientError, ChoiceError, LayerError, UnsupportedPrecision)


def _show_progress(status: dict) -> None:
    """GIMP's progress bar (status bar, or the batch console) follows the server's job."""
    Gimp.progress_set_text(f"{TITLE}: {nst_options.describe_progress(status)}")
    Gimp.progress_update(min(1.0, max(0.0, float(status.get("percent") or 0) / 100.0)))


def stylize(image: Gimp.Image, drawables: list, choices: Choices) -> Gimp.Layer:
    """Stylise the one selected layer; the image is changed only if this returns.

    GIMP stays responsive meanwhile (a plug-in is a process of its own); its progress bar's
    Cancel button ends the run by killing the plug-in, and the watchdog held while the job runs
    then cancels the server's job.
    """
    source = read_source(image, drawables, choices.selection_only)
    client = nst_client.Client.discover()
    request = nst_client.StyleRequest(
        source.pixels,
        source.width,
        source.height,
        source.layout,
        [choices.style],
        choices.settings,
        source.mask,
    )
    Gimp.progress_init(f"{TITLE}: sending the layer to the server...")
    try:
        pixels = nst_client.run_job(
            client,
            request,
            on_status=_show_progress,
            while_running=functools.partial(cancel_if_killed, client),
        )
    finally:
        Gimp.progress_end()
    return add_result_layer(source, nst_options.layer_name(choices.style), pixels)
