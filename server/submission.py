"""A ``POST /v1/jobs`` request, checked from top to bottom before anything is stored.

Every check here runs before the job is accepted, so a job that was answered 202 has inputs the
worker can always decode: a bad upload is the client's 400 now, never a failed job later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage, MultiDict

from nst_engine import Settings, SettingsError

from . import imagecodec
from .config import Limits
from .errors import BadInput

#: Settings that would let a request read files on the server's disk.
_SERVER_SIDE_ONLY = {"init_image": "a start image cannot be given through the API"}
#: The largest blend weight of one style image (the engine's bound on a style layer's).
MAX_STYLE_WEIGHT = 1e6


@dataclass(frozen=True)
class Submission:
    content: bytes
    form: imagecodec.Form
    styles: list[bytes]
    style_weights: list[float] | None
    settings: Settings
    mask: bytes | None
    #: (height, width) of each style image, for the memory estimate.
    style_sizes: list[tuple[int, int]]


def parse_submission(form: MultiDict, files: MultiDict, limits: Limits) -> Submission:
    """The request's parts as a :class:`Submission`, or a domain error (``BadInput``, or
    ``TooLarge`` from imagecodec) saying what is wrong with which part."""
    content = _one_file(files, "content")
    layout = form.get("layout")
    if layout is not None:
        content_form = imagecodec.parse_layout(layout, limits.max_pixels)
        imagecodec.decode_raw(content, content_form)
    else:
        content_form = imagecodec.decode_file(content, limits.max_pixels).form
    styles = [part.read() for part in files.getlist("style")]
    if not styles:
        raise BadInput("missing_style", "send at least one style image as a 'style' part")
    if len(styles) > limits.max_styles:
        raise BadInput("too_many_styles", f"{len(styles)} style images sent; the server's "
                       f"limit is {limits.max_styles}")
    style_sizes = []
    for index, style in enumerate(styles, start=1):
        decoded = imagecodec.decode_file(style, limits.max_pixels, name=f"style image {index}")
        style_sizes.append((decoded.form.height, decoded.form.width))
    mask = files.get("mask")
    mask_bytes = mask.read() if mask is not None else None
    if mask_bytes is not None:
        imagecodec.decode_mask(mask_bytes, content_form.width, content_form.height)
    return Submission(
        content=content,
        form=content_form,
        styles=styles,
        style_weights=_style_weights(form.get("style_weights"), len(styles)),
        settings=_settings(form.get("settings"), limits, content_form.height,
                           content_form.width),
        mask=mask_bytes,
        style_sizes=style_sizes,
    )


def _one_file(files: MultiDict, name: str) -> bytes:
    parts: list[FileStorage] = files.getlist(name)
    if len(parts) != 1:
        raise BadInput(f"missing_{name}" if not parts else f"duplicate_{name}",
                       f"send exactly one '{name}' part (an image file, or raw pixels with a "
                       f"'layout' field)")
    data = parts[0].read()
    if not data:
        raise BadInput("empty_content", f"the '{name}' part is empty")
    return data


def _style_weights(text: str | None, count: int) -> list[float] | None:
    """The blend weights, each within [0, MAX_STYLE_WEIGHT]: they are only relative to each
    other, and a bound keeps their sum finite (two of 1e308 once gave a job that "succeeded"
    with garbage)."""
    if text is None:
        return None
    try:
        weights = json.loads(text)
    except ValueError:
        weights = None
    if (not isinstance(weights, list) or len(weights) != count
            or not all(imagecodec.is_finite_number(w) and 0 <= w <= MAX_STYLE_WEIGHT
                       for w in weights)
            or not any(weights)):
        raise BadInput("bad_style_weights", f"style_weights must be a JSON list of "
                       f"{count} numbers from 0 to {MAX_STYLE_WEIGHT:g}, not all zero (one "
                       f"per style image)")
    return [float(w) for w in weights]


def _settings(text: str | None, limits: Limits, height: int, width: int) -> Settings:
    try:
        values = json.loads(text) if text else {}
    except ValueError:
        raise BadInput("bad_settings", "settings must be a JSON object") from None
    if not isinstance(values, dict):
        raise BadInput("bad_settings", "settings must be a JSON object")
    for key, why in _SERVER_SIDE_ONLY.items():
        if key in values:
            raise BadInput("bad_settings", f"setting '{key}': {why}", setting=key)
    if values.get("init") not in (None, "content", "noise"):
        raise BadInput("bad_settings", "setting 'init': must be 'content' or 'noise'",
                       setting="init")
    try:
        settings = Settings.from_dict(values)
    except SettingsError as error:
        raise BadInput("bad_settings", str(error), setting=error.setting) from None
    iterations = settings.total_iterations(height, width)
    if iterations > limits.max_iterations:
        raise BadInput("too_many_iterations",
                       f"these settings run {iterations} iterations; the server's "
                       f"limit is {limits.max_iterations}", setting="iterations")
    return settings
