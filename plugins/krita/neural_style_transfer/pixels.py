"""Which shared :class:`~nst_client.PixelLayout` Krita uses for a layer, and turning 8-bit
previews into that layout.

Pure Python (no Krita, no Qt) so it is unit-tested outside the editor. Krita hands integer RGBA
pixels as BGRA and float RGBA pixels as RGBA (checked in Krita 5.2.9: ``node.channels()`` lists
Blue, Green, Red, Alpha for U8/U16 and Red, Green, Blue, Alpha for F16/F32), little-endian,
interleaved, no padding: exactly the raw layout the server accepts, so nothing is converted.
"""

from __future__ import annotations

import struct

from .shared import nst_client

# Krita colour depth id -> (server sample name, channel order)
_DEPTHS = {
    "U8": ("u8", "BGRA"),
    "U16": ("u16", "BGRA"),
    "F16": ("f16", "RGBA"),
    "F32": ("f32", "RGBA"),
}


class UnsupportedColor(Exception):
    """The layer's colour model or depth is not one the server can take."""


def layout_for(color_model: str, color_depth: str) -> nst_client.PixelLayout:
    """The layout Krita uses for a layer, or UnsupportedColor saying what the artist can do."""
    if color_model != "RGBA" or color_depth not in _DEPTHS:
        raise UnsupportedColor(
            f"Neural Style Transfer works on RGB layers, but this one is {color_model} "
            f"{color_depth}. Convert it with Image > Convert Image Color Space... to "
            f"RGB/Alpha (8-bit integer, 16-bit integer, 16-bit float or 32-bit float), "
            f"then run the filter again."
        )
    sample, channels = _DEPTHS[color_depth]
    return nst_client.PixelLayout(channels, sample)


def _lookup_table(sample: str) -> list[bytes]:
    """Encoded bytes of each 8-bit value 0..255 in ``sample`` (255 maps to full scale)."""
    if sample == "u8":
        return [bytes([v]) for v in range(256)]
    if sample == "u16":
        return [struct.pack("<H", v * 257) for v in range(256)]
    code = {"f16": "<e", "f32": "<f"}[sample]
    return [struct.pack(code, v / 255.0) for v in range(256)]


def rgba8_to_layout(rgba: bytes, layout: nst_client.PixelLayout) -> bytes:
    """Convert 8-bit RGBA (a decoded preview) into the layer's channel order and sample type."""
    if len(rgba) % 4:
        raise ValueError("RGBA data must have 4 bytes per pixel")
    data = bytearray(rgba)
    if layout.channels == "BGRA":
        data[0::4], data[2::4] = rgba[2::4], rgba[0::4]
    if layout.sample == "u8":
        return bytes(data)
    return b"".join(map(_lookup_table(layout.sample).__getitem__, data))
