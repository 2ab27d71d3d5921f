"""Which pixel layout the plug-in exchanges with the server, for each GIMP image precision.

Pure Python (no ``gi``) so it is unit-tested outside GIMP. The layout is the shared
``nst_client.PixelLayout``; :func:`babl_format` names the same layout for GEGL. The same format is
used to read the source layer and to write the result layer, so a round trip through the server
never changes the encoding: GEGL converts from the layer's storage to this format and back.

The rules, and why:

* Non-linear and perceptual images keep their own sample type (8-bit stays ``u8``, 16-bit
  ``u16``, half ``f16``, float ``f32``) with the sRGB curve they are stored in: nothing is
  converted, so nothing is lost.
* Linear images are sent as sRGB-curve ``f32``. The network (and the style image, a file with
  the sRGB curve) sees colours as they are encoded in ordinary images; in 32-bit float the
  conversion loses nothing a linear 8/16-bit or half layer holds.
* 32-bit integer and 64-bit float have no server sample type; they go as ``f32``, which is
  finer than any colour difference a 32-bit integer or double image can show.

GEGL formats named by string carry no colour profile: an image with a profile other than sRGB is
converted to sRGB for the network and back (exact in float, rounded to the nearest value in
integer precisions).
"""

from __future__ import annotations

from .shared import nst_client

# GIMP's component type (first part of the precision's nick) -> the server's sample type.
_SAMPLES = {"u8": "u8", "u16": "u16", "half": "f16", "float": "f32"}
# The server's sample type -> Babl's name for it.
_BABL_TYPES = {"u8": "u8", "u16": "u16", "f16": "half", "f32": "float"}
CHANNELS = "RGBA"  # GEGL hands RGBA in this order; the server takes it as is
_WIDE = ("u32", "double")  # no server sample type holds these as they are
_CURVES = ("linear", "non-linear", "perceptual")


class UnsupportedPrecision(ValueError):
    """A precision this table does not know (a GIMP newer than the plug-in)."""


def exchange_format(precision_nick: str) -> nst_client.PixelLayout:
    """The format for a ``Gimp.Precision`` value nick, e.g. ``"u16-non-linear"``."""
    component, _, curve = precision_nick.partition("-")
    if curve not in _CURVES or (component not in _SAMPLES and component not in _WIDE):
        raise UnsupportedPrecision(
            f"The image precision {precision_nick!r} is not known to Neural Style Transfer. "
            f"Convert the image with Image > Precision to 8-bit, 16-bit or 32-bit float, "
            f"then run the filter again."
        )
    sample = "f32" if curve == "linear" or component in _WIDE else _SAMPLES[component]
    return nst_client.PixelLayout(CHANNELS, sample)


def babl_format(layout: nst_client.PixelLayout) -> str:
    """GEGL's name for ``layout``: "R'G'B'A" is the sRGB curve (perceptual images store the same
    curve), in the layout's sample type."""
    return f"R'G'B'A {_BABL_TYPES[layout.sample]}"
