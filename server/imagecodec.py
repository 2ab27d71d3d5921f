"""Turning uploads into pixels for the engine, and the engine's pixels back into the same form.

Artists' layers are 8 or 16 bit, or float, often with alpha. The rule here: colour goes to the
engine as float32 RGB in 0..1; the alpha channel never goes through a float conversion, it is
kept in its own sample type and written back bit for bit (times the selection mask, if any).

Pillow reads and writes 16-bit RGB(A) only by dropping to 8 bits, so 16-bit PNG goes through
``pypng`` and 16-bit/float TIFF through ``tifffile`` (both pure Python + numpy).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import png
import tifffile
from PIL import Image, UnidentifiedImageError

from .errors import BadInput, ServerError, TooLarge

#: Raw sample types: little-endian numpy dtypes.
SAMPLES = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f16": np.dtype("<f2"),
           "f32": np.dtype("<f4")}
CHANNELS = ("RGBA", "BGRA")
FILE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "tiff": "image/tiff",
              "webp": "image/webp"}
_DTYPE_NAMES = {np.dtype(v): k for k, v in SAMPLES.items()}
#: The most bytes a pixel of an accepted image decodes to: four 32-bit samples (RGBA float).
MAX_DECODED_BYTES_PER_PIXEL = 16


@dataclass(frozen=True)
class Form:
    """How the content was sent, so the result goes back in exactly that form.

    ``kind`` "raw": ``channels`` and ``sample`` are the declared layout. ``kind`` "file":
    ``format`` is the file type and ``sample`` its bit depth (u8, u16, or f32 for float TIFF)."""

    kind: str
    width: int
    height: int
    sample: str
    channels: str = "RGBA"
    format: str = ""
    alpha: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Form:
        return cls(**json.loads(text))


@dataclass
class Decoded:
    """Colour as float32 RGB (H, W, 3) in 0..1; alpha (H, W) in the sample type it came in."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    form: Form

    def engine_input(self) -> np.ndarray:
        """What the engine gets: RGB, or RGBA so its previews show the layer's transparency."""
        if self.alpha is None:
            return self.rgb
        alpha = _to_unit_float(self.alpha)
        return np.concatenate([self.rgb, alpha[..., None]], axis=2)


@dataclass(frozen=True)
class EncodedResult:
    """A finished image: ``body`` is in ``form``, which is always the content's own form.

    A typed value rather than a content type and headers: how it is answered over HTTP (media
    type, ``X-NST-*`` headers) is :mod:`server.api`'s business."""

    body: bytes
    form: Form

    @property
    def media_type(self) -> str:
        """Raw pixels are an octet stream; a file is its own image type."""
        return "application/octet-stream" if self.form.kind == "raw" else FILE_TYPES[
            self.form.format]


# ----------------------------------------------------------------------------------- raw


def parse_layout(text: str, max_pixels: int) -> Form:
    """Validate the ``layout`` form field: ``{"width", "height", "channels", "sample"}``."""
    try:
        layout = json.loads(text)
    except ValueError:
        raise BadInput("invalid_layout", "layout must be a JSON object") from None
    if not isinstance(layout, dict):
        raise BadInput("invalid_layout", "layout must be a JSON object")
    expected = {"width", "height", "channels", "sample"}
    if set(layout) != expected:
        raise BadInput("invalid_layout",
                       f"layout needs exactly the keys {sorted(expected)}, got {sorted(layout)}")
    width, height = layout["width"], layout["height"]
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInput("invalid_layout", f"layout {name} must be a positive integer")
    if layout["channels"] not in CHANNELS:
        raise BadInput("invalid_layout", f"layout channels must be one of {CHANNELS}")
    if layout["sample"] not in SAMPLES:
        raise BadInput("invalid_layout", f"layout sample must be one of {list(SAMPLES)}")
    check_pixels(width, height, max_pixels)
    return Form("raw", width, height, layout["sample"], channels=layout["channels"])


def decode_raw(data: bytes, form: Form) -> Decoded:
    """Interleaved little-endian pixels, exactly ``width*height*4`` samples."""
    dtype = SAMPLES[form.sample]
    expected = form.width * form.height * 4 * dtype.itemsize
    if len(data) != expected:
        raise BadInput("layout_mismatch",
                       f"{form.width}x{form.height} {form.channels} {form.sample} needs "
                       f"{expected} bytes, got {len(data)}")
    pixels = np.frombuffer(data, dtype=dtype).reshape(form.height, form.width, 4)
    colour = pixels[..., [2, 1, 0]] if form.channels == "BGRA" else pixels[..., :3]
    return Decoded(_colour_to_float(colour, "content"), pixels[..., 3].copy(), form)


# ---------------------------------------------------------------------------------- files


def sniff(data: bytes) -> str | None:
    """The file type from its first bytes (never from a name or a client's content type)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_file(data: bytes, max_pixels: int, name: str = "content") -> Decoded:
    """An image file, checked for its pixel count before any pixel is decoded."""
    kind = sniff(data)
    if kind is None:
        raise BadInput("unsupported_image",
                       f"{name} is not a PNG, JPEG, TIFF or WebP image file")
    try:
        if kind == "png" and _png_bit_depth(data) == 16:
            return _decode_png16(data, max_pixels, name)
        if kind == "tiff":
            decoded = _decode_tiff_deep(data, max_pixels, name)
            if decoded is not None:
                return decoded
        return _decode_pillow(data, kind, max_pixels, name)
    except ServerError:
        raise
    except Image.DecompressionBombError:
        raise TooLarge("too_many_pixels",
                       f"{name} has more pixels than the server's limit of {max_pixels}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, png.Error,
            tifffile.TiffFileError, IndexError, KeyError, EOFError, MemoryError) as error:
        raise BadInput("bad_image", f"{name} cannot be read as a {kind.upper()} "
                       f"image ({error})") from None


def check_pixels(width: int, height: int, max_pixels: int, name: str = "content") -> None:
    if width * height > max_pixels:
        raise TooLarge("too_many_pixels",
                       f"{name} is {width}x{height} = {width * height} pixels; the server's "
                       f"limit is {max_pixels}")


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8-byte signature, length, type, width, height, depth.
    return data[24] if len(data) > 24 else 0


def _decode_png16(data: bytes, max_pixels: int, name: str) -> Decoded:
    reader = png.Reader(bytes=data)
    reader.preamble()
    check_pixels(reader.width, reader.height, max_pixels, name)
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    pixels = np.array([np.asarray(row, dtype=np.uint16) for row in rows], dtype=np.uint16)
    pixels = pixels.reshape(height, width, planes)
    alpha = pixels[..., -1].copy() if info["alpha"] else None
    colour = pixels[..., :3] if planes >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    form = Form("file", width, height, "u16", format="png", alpha=alpha is not None)
    return Decoded(_colour_to_float(colour, name), alpha, form)


def _check_tiff_header(page: tifffile.TiffPage, max_pixels: int, name: str) -> None:
    """Refuse from the first page's header alone what would decode to too much memory.

    A TIFF declares its samples per pixel, bit depth and tile size freely: 50 samples per
    pixel, or a 16x16 image in one 8192x8192 tile, make a small file that decodes to hundreds
    of megabytes before any later check could see the pixels. Only the first page is ever
    read, so other pages cost nothing."""
    check_pixels(page.imagewidth, page.imagelength, max_pixels, name)
    samples, bits = page.samplesperpixel, page.bitspersample
    if not 1 <= samples <= 4:
        raise BadInput("unsupported_image", f"{name}: {samples} samples per pixel; the server "
                       f"reads 1 to 4 (grey or colour, with or without alpha)")
    if bits not in (8, 16, 32):
        raise BadInput("unsupported_image", f"{name}: {bits} bits per sample; the server "
                       f"reads 8, 16 or 32")
    width, height = page.imagewidth, page.imagelength
    if page.is_tiled:  # decoders fill whole tiles, also past the image's edges
        width = -(-width // page.tilewidth) * page.tilewidth
        height = -(-height // page.tilelength) * page.tilelength
    decoded = width * height * samples * bits // 8
    if decoded > max_pixels * MAX_DECODED_BYTES_PER_PIXEL:
        raise TooLarge("too_many_pixels", f"{name} decodes to {decoded} bytes (its tiles are "
                       f"{page.tilewidth}x{page.tilelength}); the server's limit is "
                       f"{max_pixels * MAX_DECODED_BYTES_PER_PIXEL}")


def _decode_tiff_deep(data: bytes, max_pixels: int, name: str) -> Decoded | None:
    """16-bit and float TIFF through tifffile; None for 8-bit TIFF, which Pillow reads fully.
    Either way the header is checked first (:func:`_check_tiff_header`)."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        _check_tiff_header(page, max_pixels, name)
        dtype = np.dtype(page.dtype)
        if dtype == np.uint8:
            return None
        if dtype.newbyteorder("<") not in _DTYPE_NAMES:
            raise BadInput("unsupported_image",
                           f"{name}: TIFF samples of type {dtype} are not supported "
                           f"(8 or 16 bit unsigned, or 16/32 bit float)")
        if page.photometric not in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK):
            raise BadInput("unsupported_image",
                           f"{name}: only RGB and greyscale TIFF are supported")
        try:
            pixels = page.asarray()
        except ValueError as error:
            raise BadInput("unsupported_image",
                           f"{name}: {error}; save the TIFF uncompressed or with "
                           f"Deflate/ZIP compression") from None
    if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and pixels.ndim == 3:
        pixels = np.moveaxis(pixels, 0, -1)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    pixels = pixels.astype(dtype.newbyteorder("<"), copy=False)
    planes = pixels.shape[2]
    alpha = pixels[..., -1].copy() if planes in (2, 4) else None
    colour = pixels[..., :3] if planes >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    height, width = pixels.shape[:2]
    form = Form("file", width, height, _DTYPE_NAMES[pixels.dtype], format="tiff",
                alpha=alpha is not None)
    return Decoded(_colour_to_float(colour, name), alpha, form)


def _decode_pillow(data: bytes, kind: str, max_pixels: int, name: str) -> Decoded:
    with Image.open(io.BytesIO(data)) as image:
        check_pixels(*image.size, max_pixels, name)
        image.load()
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        pixels = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    alpha = pixels[..., 3].copy() if has_alpha else None
    height, width = pixels.shape[:2]
    form = Form("file", width, height, "u8", format=kind, alpha=has_alpha)
    return Decoded(_colour_to_float(pixels[..., :3], name), alpha, form)


# -------------------------------------------------------------------------------- results


def decode_mask(data: bytes, width: int, height: int) -> np.ndarray:
    """The selection mask: one byte per pixel, 255 inside."""
    if len(data) != width * height:
        raise BadInput("mask_mismatch",
                       f"mask must be {width}x{height} = {width * height} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width)


def encode_result(result_rgb: np.ndarray, content: Decoded, mask: np.ndarray | None
                  ) -> EncodedResult:
    """The stylised colour in the content's form, so the client gets back what it sent.

    With a mask, a layer with alpha gets ``alpha * mask / 255``; a layer without alpha keeps its
    own pixels outside the selection (blended by the mask), as it has no alpha to cut with."""
    form = content.form
    rgb = np.clip(result_rgb[..., :3].astype(np.float32), 0.0, 1.0)
    alpha = content.alpha
    if mask is not None:
        if alpha is not None:
            alpha = _multiply_alpha(alpha, mask)
        else:
            weight = mask.astype(np.float32)[..., None] / 255.0
            rgb = content.rgb + (rgb - content.rgb) * weight
    colour = _from_float(rgb, SAMPLES[form.sample])
    if form.kind == "raw":
        order = [2, 1, 0] if form.channels == "BGRA" else [0, 1, 2]
        pixels = np.empty((form.height, form.width, 4), dtype=SAMPLES[form.sample])
        pixels[..., :3] = colour[..., order]
        pixels[..., 3] = alpha
        return EncodedResult(pixels.tobytes(), form)
    pixels = colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)
    return EncodedResult(_encode_file(pixels, form), form)


def _encode_file(pixels: np.ndarray, form: Form) -> bytes:
    buffer = io.BytesIO()
    height, width, planes = pixels.shape
    if form.format == "png" and form.sample == "u16":
        writer = png.Writer(width=width, height=height, alpha=planes == 4, greyscale=False,
                            bitdepth=16)
        writer.write(buffer, pixels.reshape(height, width * planes))
    elif form.format == "tiff" and form.sample != "u8":
        tifffile.imwrite(buffer, pixels, photometric="rgb", compression="zlib",
                         extrasamples=["unassalpha"] if planes == 4 else None)
    else:
        image = Image.fromarray(pixels, "RGBA" if planes == 4 else "RGB")
        options: dict[str, Any] = {
            "png": {"format": "PNG"},
            "jpeg": {"format": "JPEG", "quality": 95, "subsampling": 0},
            "tiff": {"format": "TIFF", "compression": "tiff_deflate"},
            "webp": {"format": "WEBP", "lossless": True, "exact": True},
        }[form.format]
        image.save(buffer, **options)
    return buffer.getvalue()


def preview_png(image: Image.Image) -> bytes:
    """A preview the engine made at the size a client asked for, as a PNG made for speed
    (zlib's fastest level: a few times faster than the default, and a little larger, which
    costs nothing over loopback)."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# ------------------------------------------------------------------------------- samples


def _colour_to_float(colour: np.ndarray, name: str) -> np.ndarray:
    if colour.dtype.kind == "f":
        if not np.isfinite(colour).all():
            raise BadInput("bad_pixels", f"{name} has NaN or infinite colour values")
        # Scene-referred (HDR) values above 1 cannot be stylised; they are clipped.
        return np.clip(colour.astype(np.float32), 0.0, 1.0)
    scale = float(np.iinfo(colour.dtype).max)
    return colour.astype(np.float32) / scale


def _to_unit_float(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype.kind == "f":
        return np.clip(np.nan_to_num(alpha.astype(np.float32)), 0.0, 1.0)
    return alpha.astype(np.float32) / float(np.iinfo(alpha.dtype).max)


def _from_float(rgb: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return rgb.astype(dtype)
    top = np.iinfo(dtype).max
    return np.clip(np.rint(rgb * top), 0, top).astype(dtype)


def _multiply_alpha(alpha: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``alpha * mask / 255`` in the alpha's own type; mask 255 leaves alpha bit-exact."""
    if alpha.dtype.kind == "f":
        return (alpha.astype(np.float32) * (mask.astype(np.float32) / 255.0)).astype(alpha.dtype)
    product = alpha.astype(np.uint64) * mask.astype(np.uint64)
    return ((product + 127) // 255).astype(alpha.dtype)


def is_finite_number(value: object) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value))
