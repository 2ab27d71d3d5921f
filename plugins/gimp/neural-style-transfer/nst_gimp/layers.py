"""All of the plug-in's pixel I/O with GIMP: read the source layer and selection, add the result.

The layer is read over its own extent (GIMP layers may be smaller or larger than the canvas, and
offset), so the result layer lies exactly over the source and its alpha can follow the source's
pixel for pixel. Reading and writing use the same pixel layout (see ``formats``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gi.repository import Gegl, Gimp

from .formats import babl_format, exchange_format
from .shared import nst_client

SELECTION_FORMAT = "Y u8"  # coverage 0..255, the server's mask format


class LayerError(Exception):
    """The chosen drawable cannot be stylised; the message says what to choose instead."""


@dataclass
class Source:
    """The source layer as sent to the server, read up front: the result goes where it was."""

    image: Gimp.Image
    layer: Gimp.Layer
    x: int
    y: int
    width: int
    height: int
    layout: nst_client.PixelLayout
    pixels: bytes
    mask: bytes | None


def _rect(width: int, height: int, x: int = 0, y: int = 0) -> Gegl.Rectangle:
    return Gegl.Rectangle.new(x, y, width, height)


def read_source(image: Gimp.Image, drawables: list, selection_only: bool) -> Source:
    """The one selected layer's pixels, and the selection over it when ``selection_only``.

    An empty selection means the whole layer, as for every GIMP filter.
    """
    if len(drawables) != 1 or not drawables[0].is_layer():
        raise LayerError("Select exactly one layer in the Layers dialog, then run the filter again")
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise LayerError(
            "Neural Style Transfer works on RGB images. Convert this one with Image > Mode > RGB, "
            "then run the filter again."
        )
    layer = drawables[0]
    layout = exchange_format(image.get_precision().value_nick)
    width, height = layer.get_width(), layer.get_height()
    _, x, y = layer.get_offsets()
    babl = babl_format(layout)
    pixels = layer.get_buffer().get(_rect(width, height), 1.0, babl, Gegl.AbyssPolicy.NONE)
    mask = None
    if selection_only and not Gimp.Selection.is_empty(image):
        selection = image.get_selection().get_buffer()  # in image coordinates
        over_layer = _rect(width, height, x, y)
        mask = bytes(selection.get(over_layer, 1.0, SELECTION_FORMAT, Gegl.AbyssPolicy.NONE))
    return Source(image, layer, x, y, width, height, layout, bytes(pixels), mask)


def add_result_layer(source: Source, name: str, pixels: bytes) -> Gimp.Layer:
    """Add ``pixels`` as a new layer just above the source, as one undo step.

    If anything fails the half-made layer is removed again, so the image is as it was.
    """
    image = source.image
    if not (image.is_valid() and source.layer.is_valid()):
        raise LayerError(
            "The image or layer was closed or deleted while the style transfer ran; "
            "the result was not applied."
        )
    image.undo_group_start()
    layer, inserted = None, False
    try:
        layer = Gimp.Layer.new(
            image,
            name,
            source.width,
            source.height,
            Gimp.ImageType.RGBA_IMAGE,
            100.0,
            image.get_default_new_layer_mode(),
        )
        layer.set_offsets(source.x, source.y)
        parent = source.layer.get_parent()
        inserted = image.insert_layer(layer, parent, image.get_item_position(source.layer))
        buffer = layer.get_buffer()
        buffer.set(_rect(source.width, source.height), babl_format(source.layout), pixels)
        buffer.flush()
        layer.update(0, 0, source.width, source.height)
    except Exception:
        if inserted:
            image.remove_layer(layer)
        elif layer is not None:
            layer.delete()
        raise
    finally:
        image.undo_group_end()
    return layer
