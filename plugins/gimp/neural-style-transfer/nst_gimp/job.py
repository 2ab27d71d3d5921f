"""The server side of one run: submit, follow progress, fetch the result. No GIMP in here.

Kept free of ``gi`` so the loop is tested against a real server outside GIMP; the caller passes
``on_status`` to show progress however it likes (the plug-in: GIMP's progress bar).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import nst_client

from .formats import ExchangeFormat
from .watchdog import cancel_if_killed


def stylize_pixels(
    client: nst_client.Client,
    pixels: bytes,
    width: int,
    height: int,
    fmt: ExchangeFormat,
    styles: Sequence[str],
    settings: Mapping[str, object],
    mask: bytes | None = None,
    on_status: Callable[[dict], None] | None = None,
) -> bytes:
    """Send ``pixels`` (in ``fmt``), wait for the job and return the result in the same format.

    While the job runs a watchdog process stands by to cancel it on the server if GIMP kills
    the plug-in (which is how GIMP's progress-bar Cancel button stops a plug-in). Raises the
    errors of ``nst_client``; their messages say what to do.
    """
    job_id = client.submit_raw(
        pixels, width, height, fmt.channels, fmt.sample, styles, settings, mask=mask
    )
    with cancel_if_killed(client, job_id):
        client.wait(job_id, on_progress=on_status)
        data = client.result(job_id)
    expected = fmt.byte_count(width, height)
    if len(data) != expected:
        raise nst_client.NSTClientError(
            f"The server sent {len(data)} bytes instead of {expected}; the result was not "
            f"applied. Update the server and the plug-in together (`nst-server install-plugin "
            f"gimp`)."
        )
    return data
