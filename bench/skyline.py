"""A procedural content image whose parts differ a lot: a busy city under an empty sky.

Seams show where neighbouring tiles disagree, and tiles disagree most when one holds sky and
the next holds city. The buildings here fall from most of the image's height on the left to a
low fringe on the right, so any vertical tile border has much more city on its left than on
its right, and crosses both sky and buildings. Deterministic for a seed; sharp at any size.
"""

from __future__ import annotations

import argparse
import random

from PIL import Image, ImageDraw

SKY_TOP, SKY_HORIZON = (40, 90, 170), (190, 215, 235)
WALLS = [(70, 70, 80), (105, 95, 90), (140, 130, 120), (60, 80, 95), (120, 110, 130)]
LIT, DARK = (250, 220, 130), (35, 40, 50)


def skyline(size: int = 2048, seed: int = 0) -> Image.Image:
    """A ``size`` x ``size`` RGB image: a vertical sky gradient, then buildings with windows."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(size):
        t = y / (size - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(SKY_TOP, SKY_HORIZON, strict=True))
        draw.line([(0, y), (size, y)], fill=colour)
    unit = max(4, size // 256)  # a window's side
    x = 0
    while x < size:
        width = rng.randint(12, 40) * unit
        tallest = 0.85 - 0.75 * (x + width / 2) / size  # the city thins out to the right
        height = round(size * max(0.05, tallest * rng.uniform(0.6, 1.0)))
        top = size - height
        draw.rectangle([x, top, x + width - 1, size - 1], fill=rng.choice(WALLS))
        for wy in range(top + 2 * unit, size - 2 * unit, 3 * unit):
            for wx in range(x + 2 * unit, x + width - 2 * unit, 3 * unit):
                colour = LIT if rng.random() < 0.35 else DARK
                draw.rectangle([wx, wy, wx + unit - 1, wy + 2 * unit - 1], fill=colour)
        x += width + rng.randint(0, 4) * unit
    return image


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    skyline(args.size, args.seed).save(args.output)
