"""The images every real-editor test sends through the plugins, made in code so a failure can
be reproduced pixel for pixel."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

W, H = 40, 28


def content_pixels() -> np.ndarray:
    """RGBA noise over a gradient, every alpha from opaque to clear, a fully clear column."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(H, W, 4), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, W, dtype=np.uint8)[None, :]
    pixels[..., 3] = np.linspace(255, 30, H, dtype=np.uint8)[:, None]
    pixels[:, -3:, 3] = 0
    return pixels


def style_pixels(size: int = 32) -> np.ndarray:
    """Yellow and blue stripes: a style with a strong texture."""
    style = np.zeros((size, size, 3), np.uint8)
    style[::4] = (250, 200, 20)
    style[:, ::6] = (20, 40, 220)
    return style


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def job_inputs(plan: dict) -> dict[str, bytes]:
    """The files an in-editor test script reads: the content, the style and its plan."""
    return {"content.png": png(content_pixels()), "style.png": png(style_pixels()),
            "plan.json": json.dumps(plan).encode()}
