"""How much memory a run needs, how much it may use, and how it spends a budget.

A run's memory has three parts:

- *image-sized buffers*: the content, the image being optimised and its gradient, the content
  features, the result. They grow with the image and cannot be tiled.
- *the optimiser's state*: L-BFGS keeps two image-sized vectors per step of history, so at
  16 MP twenty steps take 8 GB, more than the network's activations.
- *the tiles' working set*: VGG-19's activations for one tile, forward and backward.

:func:`plan_scale` spends a budget in that order of need: the buffers first; then the tiles, up
to a crop of :data:`TILE_CROP` pixels, because every tile also pays for its halo and small tiles
spend most of their time there; then up to :data:`MAX_HISTORY` steps of L-BFGS history (Adam,
with two vectors, when fewer than :data:`MIN_HISTORY` steps fit); what is left goes to the
tiles again. Figures are estimates from the layer shapes, calibrated against measured peaks (see the
benchmark), so that a job can be refused before it starts rather than run out of memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import tiling
from .layers import BLOCKS, LAYER_NAMES, depth

MAX_HISTORY = 20
MIN_HISTORY = 3
#: Pixels of crop the tiles get before the optimiser's history: a 1024 px tile spends about
#: a third of its time on the halo of the deepest default layer, a 512 px one over half.
TILE_CROP = 1024 * 1024
#: Bytes per pixel of one float32 RGB image.
IMAGE = 12
#: The process itself: Python, torch's libraries, VGG-19's weights.
BASELINE = 700 * 2**20
#: Image-sized buffers, in RGB images, besides the optimiser: content, image, gradient,
#: the previous good image, and the result's conversions at the end.
BUFFERS = 6

#: Memory sizes are binary, as RAM is sold and as ``free`` and ``nvidia-smi`` count: 1 GB is
#: 2**30 bytes, the same as 1 GiB.
_UNITS = {"": 1, "b": 1, **{f"{prefix}{suffix}": 2 ** (10 * power)
                            for power, prefix in enumerate("kmgt", start=1)
                            for suffix in ("", "b", "ib")}}


def parse_bytes(value: str | int | float) -> int:
    """``6GB``, ``512MiB``, ``6g`` or a plain number of bytes, as an integer."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"'{value}' is not a size; e.g. 6GB, 512MiB or 2000000000")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_bytes(count: float) -> str:
    return f"{count / 2**30:.2f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


def available(device_type: str, cuda_index: int | None = None) -> int:
    """Memory free for a run now: free GPU memory, or available RAM on the CPU."""
    if device_type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(cuda_index)
        return int(free + torch.cuda.memory_reserved(cuda_index))
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return pages * size // 2


def default_budget(device_type: str, cuda_index: int | None = None) -> int:
    """A safe share of what is free: most of a GPU's memory, half of the RAM (the editor,
    the OS and the server's other work live there too)."""
    share = 0.85 if device_type == "cuda" else 0.5
    return int(available(device_type, cuda_index) * share)


def activation_bytes(layers: tuple[str, ...] | list[str], dtype_bytes: int,
                     *, graph: bool) -> float:
    """Bytes per input pixel of a forward pass up to the deepest of ``layers``.

    With ``graph`` (forward and backward), every ReLU output and pooling index is kept for
    the backward pass, the features read are kept in float32 for the Gram matrices, and the
    backward pass holds two gradients of the widest layer at once. Without, only the
    features read and two consecutive activations are alive."""
    last = max(depth(name) for name in layers)
    channels, stride, saved, widest, read = 3, 1, 0.0, 0.0, 0.0
    convs = iter(c for block in BLOCKS for c in block)
    for name in LAYER_NAMES[: last + 1]:
        if name.startswith("conv"):
            channels = next(convs)
            size = channels / stride**2
            widest = max(widest, size)
            if name in layers:
                read += size * (dtype_bytes + (4 if graph else 0))
        elif name.startswith("relu"):
            saved += channels / stride**2 * dtype_bytes
        else:
            stride *= 2
            saved += channels / stride**2 * (8 + dtype_bytes)  # int64 indices and the output
    if graph:
        return saved + read + 2 * widest * 4
    return read + 2 * widest * dtype_bytes


@dataclass(frozen=True)
class ScalePlan:
    """How one scale spends the budget."""

    tiles: list[tiling.Tile]
    optimizer: str
    history: int
    peak: int

    @property
    def work(self) -> float:
        """An iteration's cost, in pixels through one untiled forward and backward pass: the
        crops with their halos, and for tiles the extra forward pass that sums the Gram
        matrices (a forward pass is about 0.4 of a forward and backward one)."""
        pixels = sum(t.crop_pixels for t in self.tiles)
        return pixels * (1.4 if len(self.tiles) > 1 else 1.0)

    def describe(self, height: int, width: int) -> str:
        rows = len({t.rows for t in self.tiles})
        cols = len({t.cols for t in self.tiles})
        where = "untiled" if len(self.tiles) == 1 else f"{len(self.tiles)} tiles ({rows}x{cols})"
        how = (f"L-BFGS, {self.history} steps of history" if self.optimizer == "lbfgs"
               else "Adam")
        return f"{width}x{height}: {where}, {how}, about {format_bytes(self.peak)}"


class BudgetError(ValueError):
    """Not even the smallest tiles fit: ``needed`` bytes at least, against ``budget``."""

    def __init__(self, needed: int, budget: int, height: int, width: int) -> None:
        self.needed, self.budget = needed, budget
        super().__init__(
            f"a {width}x{height} scale needs at least {format_bytes(needed)}, over the memory "
            f"budget of {format_bytes(budget)}")


def fixed_bytes(pixels: int, content_layers: tuple[str, ...], content_pixels: int) -> int:
    """Everything image-sized but the optimiser's state, at a scale of ``pixels``."""
    targets = sum(_channels(name) / tiling.stride(name) ** 2 * 4 for name in content_layers)
    return int(BASELINE + 2 * content_pixels * IMAGE + pixels * (BUFFERS * IMAGE + targets))


def plan_scale(height: int, width: int, *, layers: tuple[str, ...],
               content_layers: tuple[str, ...], optimizer: str, dtype_bytes: int,
               budget: int, content_pixels: int | None = None, extra: int = 0) -> ScalePlan:
    """Tiles and optimiser state for one scale that fit ``budget`` bytes, or BudgetError.

    ``extra``: other bytes held during the scale, such as the style images."""
    pixels = height * width
    fixed = fixed_bytes(pixels, content_layers, content_pixels or pixels) + extra
    per_pixel = activation_bytes(layers, dtype_bytes, graph=True)
    pair = 2 * IMAGE * pixels  # one step of L-BFGS history
    rest = budget - fixed
    if optimizer == "lbfgs":
        tiles_first = min(pixels, TILE_CROP) * per_pixel
        history = min(MAX_HISTORY, max(0, int((rest - tiles_first - 5 * IMAGE * pixels) // pair)))
        if history < MIN_HISTORY:
            optimizer, history = "adam", 0
    else:
        history = 0
    state = (2 * history + 5) * IMAGE * pixels if optimizer == "lbfgs" else 3 * IMAGE * pixels
    for_tiles = rest - state
    smallest = tiling.smallest_crop(height, width, layers)
    if for_tiles < smallest * per_pixel:
        raise BudgetError(int(fixed + state + smallest * per_pixel), budget, height, width)
    tiles = tiling.plan(height, width, layers, int(for_tiles // per_pixel))
    largest = max(t.crop_pixels for t in tiles)
    return ScalePlan(tiles, optimizer, history, int(fixed + state + largest * per_pixel))


def largest_fitting_side(height: int, width: int, fits: Callable[[int, int], bool]) -> int:
    """The longest side, at the content's aspect ratio, for which ``fits(h, w)``; 0: none."""
    low, high = 0, max(height, width)
    while low < high:
        side = (low + high + 1) // 2
        scale = side / max(height, width)
        if fits(max(1, round(height * scale)), max(1, round(width * scale))):
            low = side
        else:
            high = side - 1
    return low


def _channels(layer: str) -> int:
    flat = [c for block in BLOCKS for c in block]
    convs = [name for name in LAYER_NAMES[: depth(layer) + 1] if name.startswith("conv")]
    return flat[len(convs) - 1]

