"""The live preview: a temporary layer above the source that fills in while the job runs.

GIMP decodes the server's preview PNG itself (``Gimp.file_load_layer``) and scales it to the
source layer, so the plug-in needs no image library. Each new frame replaces the layer before
it. The preview must never become an undo step of its own: the artist's undo history after a
run is the result layer's one step, as in Krita. So each change to the layer stack (a frame
added, the last one removed) is made with the image's undo frozen, which records nothing and
keeps the steps before it; the artist's own edits in between are recorded as usual.

GIMP's Cancel button kills the plug-in, so no code of ours can remove the preview then. Each
frame carries a (not saved) parasite that marks it as ours, and the next run removes what a
killed one left: :func:`remove_left_over`, never a layer of the artist's that has the same name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from gi.repository import Gimp, Gio, GLib

from .layers import Source

#: Marks a preview frame, so a frame left by a killed run is told apart from the artist's layers.
PARASITE = "nst-preview-frame"


@contextlib.contextmanager
def _unrecorded(image: Gimp.Image) -> Iterator[None]:
    image.undo_freeze()
    try:
        yield
    finally:
        image.undo_thaw()


class PreviewLayer:
    """The preview of one run; :meth:`remove` before the result is added, whatever happened."""

    def __init__(self, source: Source, name: str) -> None:
        self._source = source
        self._name = name
        self._layer: Gimp.Layer | None = None

    def show(self, png: bytes) -> None:
        """Put ``png`` (the server's preview) over the source, scaled to its size. A frame
        GIMP cannot decode is skipped: a preview is worth less than the job."""
        source, image = self._source, self._source.image
        if not (image.is_valid() and source.layer.is_valid()):
            return  # closed or deleted meanwhile: the result step reports it
        frame = _load_layer(image, png)
        if frame is None:
            return
        with _unrecorded(image):
            self._drop()  # first: GIMP would name the new frame "... #1" beside the old one
            frame.set_name(self._name)
            image.insert_layer(frame, source.layer.get_parent(),
                               image.get_item_position(source.layer))
            self._layer = frame
            # Only a layer in an image can be scaled, moved or marked.
            frame.attach_parasite(Gimp.Parasite.new(PARASITE, 0, b"1"))  # flags 0: not saved
            frame.scale(source.width, source.height, False)
            frame.set_offsets(source.x, source.y)
        Gimp.displays_flush()  # the display shows the new frame only now: no flicker

    def remove(self) -> None:
        """Take the preview out of the image (nothing to do when none was shown)."""
        if self._layer is None:
            return
        image = self._source.image
        if image.is_valid():
            with _unrecorded(image):
                self._drop()
            Gimp.displays_flush()
        self._layer = None

    def _drop(self) -> None:
        if self._layer is not None and self._layer.is_valid():
            self._source.image.remove_layer(self._layer)


def _load_layer(image: Gimp.Image, png: bytes) -> Gimp.Layer | None:
    """A layer (not yet in the image) decoded by GIMP from PNG bytes; None if it cannot be."""
    handle, path = tempfile.mkstemp(prefix="nst-preview-", suffix=".png")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(png)
        return Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                    Gio.File.new_for_path(path))
    except (GLib.Error, OSError):  # a full temporary folder, or a PNG GIMP refuses
        return None
    finally:
        os.unlink(path)


def remove_left_over(image: Gimp.Image) -> None:
    """Remove the preview frames a run killed by GIMP's Cancel button left in ``image``."""
    frames = [layer for layer in image.get_layers() if layer.get_parasite(PARASITE) is not None]
    if not frames:
        return
    with _unrecorded(image):
        for frame in frames:
            image.remove_layer(frame)
    Gimp.displays_flush()
