"""Which pixel format the plug-in exchanges with the server, for each GIMP image precision.

Pure Python (no ``gi``) so it is unit-tested outside GIMP. The same format is used to read the
source layer and to write the result layer, so a round trip through the server never changes the
encoding: GEGL converts from the layer's storage to this format and back.

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

from dataclasses import dataclass

# GIMP's component type (first part of the precision's nick) -> server sample, Babl type, bytes.
_SAMPLES = {
    "u8": ("u8", "u8", 1),
    "u16": ("u16", "u16", 2),
    "half": ("f16", "half", 2),
    "float": ("f32", "float", 4),
}
_FLOAT = _SAMPLES["float"]
_WIDE = ("u32", "double")  # no server sample type holds these as they are
_CURVES = ("linear", "non-linear", "perceptual")


class UnsupportedPrecision(ValueError):
    """A precision this table does not know (a GIMP newer than the plug-in)."""


@dataclass(frozen=True)
class ExchangeFormat:
    """How pixels travel: ``babl`` for GEGL, ``sample`` for the server's ``layout``."""

    babl: str
    sample: str
    bytes_per_sample: int

    channels = "RGBA"  # GEGL hands RGBA in this order; the server takes it as is

    def byte_count(self, width: int, height: int) -> int:
        return width * height * 4 * self.bytes_per_sample


def exchange_format(precision_nick: str) -> ExchangeFormat:
    """The format for a ``Gimp.Precision`` value nick, e.g. ``"u16-non-linear"``."""
    component, _, curve = precision_nick.partition("-")
    if curve not in _CURVES or (component not in _SAMPLES and component not in _WIDE):
        raise UnsupportedPrecision(
            f"The image precision {precision_nick!r} is not known to Neural Style Transfer. "
            f"Convert the image with Image > Precision to 8-bit, 16-bit or 32-bit float, "
            f"then run the filter again."
        )
    if curve == "linear" or component in _WIDE:
        sample, babl_type, size = _FLOAT
    else:
        sample, babl_type, size = _SAMPLES[component]
    # "R'G'B'A" is the sRGB curve; perceptual images store the same curve.
    return ExchangeFormat(f"R'G'B'A {babl_type}", sample, size)
