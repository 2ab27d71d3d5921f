"""The scripting entry: stylise a node without any dialog (Scripter, batch scripts, tests)."""

from __future__ import annotations

from collections.abc import Callable

from .job import add_layer_above, read_request
from .shared import nst_client, nst_launcher, nst_options


def stylize_node(
    document,
    node,
    style_path: str,
    settings: dict | None = None,
    *,
    selection_only: bool = False,
    client: nst_client.Client | None = None,
    on_progress: Callable[[dict], None] | None = None,
    job_id: str | None = None,
):
    """Stylise ``node`` with the image at ``style_path`` and return the new layer.

    Blocks until the server is done (so do not call it from a dialog's button handler); finds
    the server like the dialog does (connection file, or NST_SERVER_URL / NST_TOKEN), and
    starts it like the dialog does when none answers.
    ``settings`` are the server's, e.g. ``{"preset": "draft"}``. The new paint layer is added
    above ``node``, named after the style; ``node`` itself is never modified, and nothing is
    added if anything fails. Pass ``job_id`` (from ``ServerGone.job_id``) to pick up a job the
    server was still running when it stopped answering. Raises the errors of ``nst_client``
    (ServerUnavailable, AuthError, JobFailed, ...) and ``pixels.UnsupportedColor``.
    """
    client = client or nst_launcher.ensure_server()
    request = read_request(document, node, [style_path], settings, selection_only)
    result = nst_client.run_job(client, request, on_status=on_progress, job_id=job_id)
    return add_layer_above(document, node, nst_options.layer_name(style_path), result)
