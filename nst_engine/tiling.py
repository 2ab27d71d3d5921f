"""Tiles that reproduce VGG-19's features exactly, so a large image can be processed in parts.

A tile is a *core*, the pixels it is responsible for, inside a *crop*, the core plus a halo of
neighbouring pixels. The halo is as wide as the receptive field of the deepest layer used, so
every feature computed over a tile's core depends only on pixels inside its crop, exactly as in
the untiled network: nothing at a core ever sees the zero padding at a crop's edge. Crops start
on multiples of the network's total stride at that layer, so the pooling windows line up with
the untiled ones too. Cores partition the image, and so they partition every feature map: sums
over features (Gram matrices, losses) add up over tiles to the untiled sums, bit for bit up to
rounding.

Nothing here touches torch: the arithmetic is shared by the engine, which runs the tiles, and
by the memory estimate, which the server makes before accepting a job.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .layers import LAYER_NAMES, depth


def stride(layer: str) -> int:
    """Pixels per feature at ``layer``: 2 for every pooling layer before it."""
    pools = sum(1 for name in LAYER_NAMES[: depth(layer)] if name.startswith("pool"))
    return 2**pools


def feature_length(pixels: int, layer: str) -> int:
    """Length of a feature map at ``layer`` along a side of ``pixels`` (pooling rounds up)."""
    return math.ceil(pixels / stride(layer))


def halo(layers: tuple[str, ...] | list[str]) -> int:
    """Pixels of context a tile needs on each side so its core's features are exact.

    It is the receptive-field radius of the deepest layer: each 3x3 convolution adds one
    feature on each side, and each 2x2 pooling window reaches one feature further on one
    side. Rounded up to the alignment, so crops start where pooling windows start."""
    deepest = max(layers, key=depth)
    radius, step = 0, 1
    for name in LAYER_NAMES[: depth(deepest) + 1]:
        if name.startswith("conv"):
            radius += step
        elif name.startswith("pool"):
            radius += step
            step *= 2
    align = alignment(layers)
    return math.ceil(radius / align) * align


def alignment(layers: tuple[str, ...] | list[str]) -> int:
    """Tile boundaries fall on multiples of this: the stride of the deepest layer."""
    return stride(max(layers, key=depth))


@dataclass(frozen=True)
class Span:
    """One axis of a tile: the core ``[start, stop)`` in the crop ``[crop_start, crop_stop)``."""

    start: int
    stop: int
    crop_start: int
    crop_stop: int

    def features(self, layer: str, pixels: int) -> tuple[slice, slice]:
        """Where the core's features are, at ``layer``: in the crop's map, and in the image's."""
        s = stride(layer)
        first = self.start // s
        last = feature_length(pixels, layer) if self.stop == pixels else self.stop // s
        offset = self.crop_start // s
        return slice(first - offset, last - offset), slice(first, last)


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    @property
    def crop_pixels(self) -> int:
        return (self.rows.crop_stop - self.rows.crop_start) * (
            self.cols.crop_stop - self.cols.crop_start)

    def crop(self) -> tuple[slice, slice]:
        """The crop's rows and columns in the image."""
        return (slice(self.rows.crop_start, self.rows.crop_stop),
                slice(self.cols.crop_start, self.cols.crop_stop))

    def features(self, layer: str, height: int, width: int
                 ) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """The core's features at ``layer``: (rows, cols) in the crop's map and in the image's."""
        rows_crop, rows_image = self.rows.features(layer, height)
        cols_crop, cols_image = self.cols.features(layer, width)
        return (rows_crop, cols_crop), (rows_image, cols_image)


def spans(length: int, parts: int, align: int, context: int) -> list[Span]:
    """Cut ``[0, length)`` into ``parts`` aligned cores of near-equal size, each with its halo."""
    units = math.ceil(length / align)
    parts = max(1, min(parts, units))
    cuts = [min(length, round(units * i / parts) * align) for i in range(parts + 1)]
    return [Span(a, b, max(0, a - context), min(length, b + context))
            for a, b in itertools.pairwise(cuts)]


def whole(height: int, width: int) -> list[Tile]:
    """One tile: the whole image, with no halo (the untiled case)."""
    return [Tile(Span(0, height, 0, height), Span(0, width, 0, width))]


def plan(height: int, width: int, layers: tuple[str, ...] | list[str],
         max_crop_pixels: int) -> list[Tile]:
    """The fewest tiles whose crops each hold at most ``max_crop_pixels`` pixels.

    One tile (the whole image) when it fits; otherwise the grid whose crops add up to the
    fewest pixels, which is the least work, since every pixel of a halo is computed twice.
    Raises ``ValueError`` when even the finest grid (cores of :func:`min_core`) has a
    larger crop."""
    if height * width <= max_crop_pixels:
        return whole(height, width)
    rows, cols = _crops(height, layers), _crops(width, layers)
    grids = [(row_total * col_total, r * c, r, c)
             for r, (row_crop, row_total) in enumerate(rows, start=1)
             for c, (col_crop, col_total) in enumerate(cols, start=1)
             if row_crop * col_crop <= max_crop_pixels]
    if not grids:
        raise ValueError(f"a tile needs at least {smallest_crop(height, width, layers)} pixels")
    _, _, rows, cols = min(grids)
    align, context = alignment(layers), halo(layers)
    return [Tile(r, c) for r in spans(height, rows, align, context)
            for c in spans(width, cols, align, context)]


def _crops(length: int, layers: tuple[str, ...] | list[str]) -> list[tuple[int, int]]:
    """Entry k: the longest crop and the crops' total length when an axis of ``length`` is
    cut into k + 1 parts."""
    align, context = alignment(layers), halo(layers)
    cuts = []
    for parts in range(1, max(1, length // min_core(layers)) + 1):
        crops = [s.crop_stop - s.crop_start for s in spans(length, parts, align, context)]
        cuts.append((max(crops), sum(crops)))
    return cuts


#: No core is smaller than this, however shallow the layers: below it a tile's fixed costs
#: (a call per layer, the Python between them) outweigh its pixels, and the grids to choose
#: from (one per number of parts along each side) would grow with the image's size.
MIN_CORE = 64


def min_core(layers: tuple[str, ...] | list[str]) -> int:
    """The smallest core worth a tile: twice the halo (smaller cores would spend most of the
    time on their halos; at this size, three quarters of it already), and MIN_CORE."""
    return max(2 * halo(layers), alignment(layers), MIN_CORE)


def smallest_crop(height: int, width: int, layers: tuple[str, ...] | list[str]) -> int:
    """Pixels in the largest crop of the finest grid :func:`plan` makes for this image."""
    return min(c for c, _ in _crops(height, layers)) * min(c for c, _ in _crops(width, layers))
