"""A procedural "painting" to use as a style image: thick swirling brush strokes.

The project ships no third-party artwork, so the README example and the benchmark use
this generated image (deterministic for a seed) as their style."""

from __future__ import annotations

import argparse
import math
import random

from PIL import Image, ImageDraw, ImageFilter

PALETTE = [(20, 40, 110), (35, 75, 160), (60, 110, 190), (230, 200, 70), (250, 230, 120),
           (15, 25, 60), (120, 160, 210), (200, 140, 40)]


def painting(size: int = 512, seed: int = 0, strokes: int = 6000) -> Image.Image:
    """Strokes follow a swirling flow field; colours are drawn from a night-sky palette."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), PALETTE[5])
    draw = ImageDraw.Draw(image)
    centres = [(rng.uniform(0, size), rng.uniform(0, size)) for _ in range(5)]
    for _ in range(strokes):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        colour = rng.choice(PALETTE)
        jitter = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in colour)
        width = rng.randint(max(2, size // 160), max(3, size // 60))
        points = [(x, y)]
        for _ in range(rng.randint(4, 10)):
            cx, cy = min(centres, key=lambda c: (c[0] - x) ** 2 + (c[1] - y) ** 2)
            angle = math.atan2(y - cy, x - cx) + math.pi / 2 + 0.3 * math.sin(x / 40)
            x += math.cos(angle) * size / 100
            y += math.sin(angle) * size / 100
            points.append((x, y))
        draw.line(points, fill=jitter, width=width, joint="curve")
    return image.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    painting(args.size, args.seed).save(args.output)
