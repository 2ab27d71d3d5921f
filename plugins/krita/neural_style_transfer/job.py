"""The style transfer job, between Krita's document model and the server.

Three steps with different thread rules, kept apart so the dialog and the scripting entry share
them: ``read_request`` and the layer functions touch Krita objects (UI thread only);
``run_job`` only talks to the server and may run on any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .pixels import PixelLayout, layout_for
from .shared import nst_client


class NoSelection(nst_client.NSTClientError):
    """'Only inside the selection' was asked for, but nothing is selected."""


@dataclass
class StyleRequest:
    """Everything sent to the server, read from Krita up front so the worker needs no Krita."""

    pixels: bytes
    width: int
    height: int
    layout: PixelLayout
    styles: list[str]
    settings: dict = field(default_factory=dict)
    mask: bytes | None = None

    def submit(self, client: nst_client.Client) -> str:
        return client.submit_raw(
            self.pixels,
            self.width,
            self.height,
            self.layout.channels,
            self.layout.sample,
            self.styles,
            self.settings,
            mask=self.mask,
        )


def read_request(
    document,
    node,
    styles: Sequence[str],
    settings: dict | None = None,
    selection_only: bool = False,
) -> StyleRequest:
    """Read the node's pixels over the whole canvas (and the selection as mask). UI thread."""
    layout = layout_for(node.colorModel(), node.colorDepth())
    width, height = document.width(), document.height()
    mask = None
    if selection_only:
        selection = document.selection()
        if selection is None:
            raise NoSelection(
                "Nothing is selected. Select an area first, or untick 'Only inside the selection'."
            )
        mask = bytes(selection.pixelData(0, 0, width, height))
    pixels = bytes(node.pixelData(0, 0, width, height))
    return StyleRequest(
        pixels, width, height, layout, [str(s) for s in styles], dict(settings or {}), mask
    )


def run_job(
    client: nst_client.Client,
    request: StyleRequest,
    on_status: Callable[[dict], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    job_id: str | None = None,
    on_job_id: Callable[[str], None] | None = None,
) -> bytes:
    """Submit (or resume ``job_id``), wait, and fetch the result bytes. Any thread."""
    if job_id is None:
        job_id = request.submit(client)
    if on_job_id is not None:
        on_job_id(job_id)
    client.wait(job_id, on_progress=on_status, should_cancel=should_cancel)
    data = client.result(job_id)
    expected = request.layout.byte_count(request.width, request.height)
    if len(data) != expected:
        raise nst_client.NSTClientError(
            f"The server sent {len(data)} bytes instead of {expected}; the result was not "
            f"applied. Update the server (`nst-server --version`) and the plugin together."
        )
    return data


def add_layer_above(document, source, name: str, pixels: bytes | None = None):
    """Add a paint layer in the source's colour space just above it, as one undoable step.

    Pixels given here are written before the layer joins the image, so the only undo entry is
    Krita's "Add Layer": one undo removes the whole result.
    """
    node = document.createNode(name, "paintlayer")
    space = (source.colorModel(), source.colorDepth(), source.colorProfile())
    if (node.colorModel(), node.colorDepth(), node.colorProfile()) != space:
        node.setColorSpace(*space)
    if pixels is not None:
        node.setPixelData(pixels, 0, 0, document.width(), document.height())
    parent = source.parentNode() or document.rootNode()
    parent.addChildNode(node, source)
    document.refreshProjection()
    return node


def write_pixels(document, node, pixels: bytes) -> None:
    """Replace a layer's pixels over the whole canvas and redraw. UI thread."""
    node.setPixelData(pixels, 0, 0, document.width(), document.height())
    document.refreshProjection()


def is_in_document(document, node) -> bool:
    """False once the artist deleted (or undid) the layer while the job ran."""
    return node.parentNode() is not None and any(
        n.uniqueId() == node.uniqueId() for n in _walk(document.rootNode())
    )


def _walk(node):
    for child in node.childNodes():
        yield child
        yield from _walk(child)
