"""The Krita side of a style transfer job: reading a layer into a request, and adding layers.

Everything here touches Krita objects, so it runs on the UI thread only. The job itself (submit,
wait, fetch, check) is the shared ``nst_client.run_job``, which needs no Krita and may run on
any thread; the dialog and the scripting entry both use these functions around it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .pixels import layout_for
from .shared import nst_client


class NoSelection(nst_client.NSTClientError):
    """'Only inside the selection' was asked for, but nothing is selected."""


def read_request(
    document,
    node,
    styles: Sequence[str],
    settings: dict | None = None,
    selection_only: bool = False,
) -> nst_client.StyleRequest:
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
    return nst_client.StyleRequest(
        pixels, width, height, layout, [str(s) for s in styles], dict(settings or {}), mask
    )


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
