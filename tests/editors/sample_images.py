"""The images every real-editor test sends through the plugins, made in code so a failure can
be reproduced pixel for pixel."""

from __future__ import annotations

import io
import json
import re

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


#: The full-resolution tests' layer: a painter's canvas, large enough that it runs in tiles.
FULL_W, FULL_H = 4000, 3000


#: "Full resolution" made cheap enough for CI, over the preset the dialogs send. The content
#: stays FULL_W x FULL_H and the last scale is its own size; what is cut is the work: scales of
#: 800 and 1600 px then straight to 4000 (no 2048 step), only conv1_1 (conv1_2 and conv2_1 cost
#: ~20x more per pixel on a CPU) and the style at a quarter of the scale's size (at the default
#: it is resized to 4000 px and costs more than the content). The first L-BFGS step of a scale
#: barely moves the pixels (torch scales it by 1/|gradient|_1), so the 800 px scale gets four
#: iterations to paint a visible change and the costly scales one each.
FULL_RESOLUTION_OVERRIDES = {
    "size": 1600, "scales": 2, "initial_iterations": 4, "iterations": 1, "full_iterations": 1,
    "style_layers": {"conv1_1": 1.0}, "content_layers": ["conv1_1"], "style_scale": 0.25,
    "precision": "fp32",  # the precision the memory budget is computed for (tests/budgets.py)
}


def full_resolution_settings(tiles: int = 2) -> dict:
    """What to send over the ``full`` preset: FULL_RESOLUTION_OVERRIDES and a ``memory_budget``
    that cuts the FULL_W x FULL_H scale into at least ``tiles`` tiles (the engine lowers it
    further when half the free RAM is less, so the exact plan depends on the machine)."""
    from budgets import budget_for_tiles

    from nst_engine import Settings

    settings = Settings.from_dict({"preset": "full", **FULL_RESOLUTION_OVERRIDES})
    budget = budget_for_tiles(settings, FULL_H, FULL_W, tiles=tiles,
                              style_sizes=(style_pixels().shape[:2],))
    return {**FULL_RESOLUTION_OVERRIDES, "memory_budget": budget}


def full_size_tiles(plan: str) -> int:
    """How many tiles a job status' ``plan`` says the FULL_W x FULL_H scale runs in (1: untiled,
    0: the plan is for another size), e.g. "4000x3000: 12 tiles (3x4), L-BFGS, ..." -> 12."""
    if not plan.startswith(f"{FULL_W}x{FULL_H}: "):
        return 0
    match = re.match(r"(\d+) tiles \(\d+x\d+\)", plan.split(": ", 1)[1])
    return int(match.group(1)) if match else 1


def full_size_pixels() -> np.ndarray:
    """A FULL_W x FULL_H RGBA layer whose tiles differ a lot: a smooth sky over a busy city of
    noise and stripes. Alpha varies everywhere: a diagonal ramp (1 to 255), noisy in the busy
    half, with a fully clear block and a fully opaque block."""
    rng = np.random.default_rng(12)
    y, x = np.mgrid[0:FULL_H, 0:FULL_W].astype(np.float32)
    pixels = np.empty((FULL_H, FULL_W, 4), np.uint8)
    sky = y < FULL_H // 2
    pixels[..., 0] = np.where(sky, 60 + 80 * y / FULL_H, 0).astype(np.uint8)
    pixels[..., 1] = np.where(sky, 120 + 60 * x / FULL_W, 0).astype(np.uint8)
    pixels[..., 2] = np.where(sky, 230 - 40 * y / FULL_H, 0).astype(np.uint8)
    busy = rng.integers(0, 256, size=(FULL_H - FULL_H // 2, FULL_W, 3), dtype=np.uint8)
    busy[:, ::7] = (240, 220, 30)
    busy[::11] //= 3
    pixels[FULL_H // 2 :, :, :3] = busy
    ramp = 1 + 254 * (x + y) / (FULL_W + FULL_H - 2)
    noise = np.where(sky, 0, rng.integers(-40, 41, size=(FULL_H, FULL_W)))
    pixels[..., 3] = np.clip(ramp + noise, 1, 255).astype(np.uint8)
    pixels[200:700, 300:1100, 3] = 0
    pixels[2200:2700, 2900:3700, 3] = 255
    return pixels


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # Level 1: a 4000x3000 layer of noise takes seconds at the default level, and size is no
    # concern for a file that never leaves the machine.
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def job_inputs(plan: dict, content: np.ndarray | None = None) -> dict[str, bytes]:
    """The files an in-editor test script reads: the content (``content_pixels()`` unless
    given), the style and its plan."""
    content = content_pixels() if content is None else content
    return {"content.png": png(content), "style.png": png(style_pixels()),
            "plan.json": json.dumps(plan).encode()}
