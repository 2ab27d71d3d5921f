"""The loss of Gatys et al. and its exact gradient, over the whole image or tile by tile.

    loss = content_weight * content + style_weight * style + tv_weight * tv

The style term compares Gram matrices, which sum over *every* position of a feature map, so
a tile cannot be optimised on its own without changing the result: tiles stylised apart get
their own colours and seams. Here a tiled evaluation is the untiled one, reordered:

1. A forward pass over each tile adds its core's share to the Gram matrices.
2. With the whole image's Gram matrices known, the style loss and its derivative with respect
   to each Gram matrix (a small C x C residual) are known too.
3. A second pass runs forward and backward over each tile against that residual. The
   gradient of <R, share of the tile's core> with respect to the core's features F is
   (R + R^T) F / positions, one matrix product, handed to autograd as the features'
   gradient; backpropagated to the tile's pixels it is exactly the tile's contribution to
   the untiled gradient, halo included, and the contributions add up into the image's.

The content loss is a sum over positions, so each tile adds its own part. The last tile of the
first pass keeps its graph and is the first to be differentiated, so a single tile (the
untiled case) costs one forward and one backward pass, as before tiling existed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import torch

from .device import autocast
from .losses import gram_sum, relative_mse, squared_error_share, total_variation
from .settings import Settings
from .tiling import Tile, feature_length
from .vgg import VGG19

#: Called after each pass over a tile with (tiles done, tiles per evaluation); it may raise
#: to stop the run (cancellation).
TileCallback = Callable[[int, int], None]
#: In fp16, the largest gradient handed to autograd at the features is scaled to this.
FP16_GRADIENT = 2.0**4


def layout(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Channels-last memory on CPU and CUDA, where it speeds up convolutions."""
    if device.type == "mps":
        return image.contiguous()
    return image.contiguous(memory_format=torch.channels_last)


class Network:
    """VGG-19 applied to an image in tiles, with the run's pooling, precision and device."""

    def __init__(self, model: VGG19, pooling: str, dtype: torch.dtype,
                 device: torch.device, *, channels_last: bool = True) -> None:
        """``channels_last``: the input's memory layout (the benchmark's plain fp32 path
        turns it off, with the model in the default layout)."""
        self.model, self.pooling, self.dtype, self.device = model, pooling, dtype, device
        self.channels_last = channels_last

    def features(self, crop: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        with autocast(self.device, self.dtype):
            net_input = layout(crop, self.device) if self.channels_last else crop.contiguous()
            return self.model(net_input, layers, self.pooling)

    def core(self, image: torch.Tensor, tile: Tile, layers: tuple[str, ...], *,
             track: bool = False) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The features of ``tile``'s core at ``layers``, and the tile's crop.

        With ``track`` the crop is a leaf whose graph leads to the features, to be
        differentiated; otherwise no graph is kept."""
        height, width = image.shape[-2:]
        rows, cols = tile.crop()
        crop = image.detach()[..., rows, cols].clone().requires_grad_(track)
        with torch.set_grad_enabled(track):
            features = self.features(crop, layers)
            cores = {name: _core(features[name], tile, name, height, width) for name in layers}
        return cores, crop

    def feature_maps(self, image: torch.Tensor, layers: tuple[str, ...],
                     tiles: list[Tile]) -> dict[str, torch.Tensor]:
        """The whole image's feature maps at ``layers``, assembled from the tiles' cores."""
        height, width = image.shape[-2:]
        maps: dict[str, torch.Tensor] = {}
        for tile in tiles:
            cores, _ = self.core(image, tile, layers)
            for name, core in cores.items():
                if name not in maps:
                    size = (feature_length(height, name), feature_length(width, name))
                    maps[name] = core.new_empty((*core.shape[:2], *size))
                _, (rows, cols) = tile.features(name, height, width)
                maps[name][..., rows, cols] = core
            del cores
        return maps

    def gram_matrices(self, image: torch.Tensor, layers: tuple[str, ...],
                      tiles: list[Tile]) -> dict[str, torch.Tensor]:
        """The whole image's Gram matrices at ``layers``, summed over the tiles' cores."""
        sums = GramSums(image.shape[-2:])
        for tile in tiles:
            sums.add(self.core(image, tile, layers)[0])
        return sums.grams()


class GramSums:
    """Gram matrices accumulated core by core, then divided by the whole map's size."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.height, self.width = size
        self._sums: dict[str, torch.Tensor] = {}

    def add(self, cores: Mapping[str, torch.Tensor]) -> None:
        for name, core in cores.items():
            part = gram_sum(core.detach())
            self._sums[name] = self._sums[name] + part if name in self._sums else part

    def positions(self, name: str) -> int:
        return feature_length(self.height, name) * feature_length(self.width, name)

    def grams(self) -> dict[str, torch.Tensor]:
        return {name: total / self.positions(name) for name, total in self._sums.items()}


class Objective:
    """Evaluates the loss at an image and fills ``image.grad`` with its exact gradient.

    ``content_targets`` are whole-image feature maps at the content layers, ``style_targets``
    Gram matrices at the style layers (see :meth:`StyleTransfer.style_targets`); ``tiles``
    cover the image (one tile: untiled)."""

    def __init__(self, network: Network, settings: Settings,
                 content_targets: Mapping[str, torch.Tensor],
                 style_targets: Mapping[str, torch.Tensor], tiles: list[Tile],
                 on_tile: TileCallback | None = None) -> None:
        self.network, self.settings, self.tiles = network, settings, tiles
        self.on_tile = on_tile
        self.content_targets = dict(content_targets)
        self.content_energy = {name: target.float().square().mean()
                               for name, target in content_targets.items()}
        self.style_targets = dict(style_targets)
        total = sum(settings.style_layers.values())
        self.style_weights = {name: weight / total
                              for name, weight in settings.style_layers.items() if weight > 0}
        self.style_layers = tuple(self.style_weights)
        self.layers = tuple(dict.fromkeys((*settings.content_layers, *self.style_layers)))

    @property
    def passes(self) -> int:
        """Passes over a tile per evaluation: one when untiled, else two per tile."""
        return 1 if len(self.tiles) == 1 else 2 * len(self.tiles)

    def __call__(self, image: torch.Tensor) -> dict[str, float]:
        """The loss terms and their weighted ``total`` at ``image``; sets ``image.grad``."""
        settings, tiles = self.settings, self.tiles
        height, width = image.shape[-2:]
        done = 0

        # Pass 1: the whole image's Gram matrices; the last tile keeps its graph.
        sums = GramSums((height, width))
        for index, tile in enumerate(tiles):
            last = index == len(tiles) - 1
            cores, crop = self.network.core(image, tile, self.layers, track=last)
            sums.add({name: cores[name] for name in self.style_layers})
            if not last:
                del cores, crop  # free this tile's features before the next is computed
            if len(tiles) > 1:
                done = self._tile_done(done)
        grams = {name: gram.requires_grad_(True) for name, gram in sums.grams().items()}
        style = torch.stack([
            weight * relative_mse(grams[name], self.style_targets[name])
            for name, weight in self.style_weights.items()
        ]).sum()
        residuals = dict(zip(grams, torch.autograd.grad(settings.style_weight * style,
                                                        list(grams.values())), strict=True))

        # Pass 2: each tile's share of the gradient, the kept (last) tile first. Handing
        # autograd the loss's gradient at the features (step 3 above) instead of
        # differentiating the core's share of the Gram matrix saves computing that share
        # again and two products more, with fp32 copies of the features kept for them:
        # 1.65-2.0x faster per iteration in bf16 on a CPU with AMX (README, Benchmark).
        symmetric = {name: (r + r.T) / sums.positions(name) for name, r in residuals.items()}
        grad = torch.zeros_like(image)
        content = torch.zeros((), device=image.device)
        for index, tile in enumerate([tiles[-1], *tiles[:-1]]):
            if index > 0:
                cores, crop = self.network.core(image, tile, self.layers, track=True)
            part, gradients = self._feature_gradients(cores, tile, height, width, symmetric)
            content += part
            scale = 1.0
            if self.network.dtype == torch.float16:
                scale = _fp16_scale(gradients.values())
                gradients = {name: g * scale for name, g in gradients.items()}
            names = list(gradients)
            torch.autograd.backward([cores[name] for name in names],
                                    [gradients[name].to(cores[name].dtype) for name in names])
            del cores, gradients
            rows, cols = tile.crop()
            grad[..., rows, cols] += crop.grad / scale
            done = self._tile_done(done)

        terms = {"content": content, "style": style.detach()}
        if settings.tv_weight > 0:
            leaf = image.detach().requires_grad_(True)
            terms["tv"] = total_variation(leaf)
            (settings.tv_weight * terms["tv"]).backward()
            grad += leaf.grad
        else:
            terms["tv"] = torch.zeros(())
        image.grad = grad
        values = {name: value.item() for name, value in terms.items()}
        values["total"] = (settings.content_weight * values["content"]
                           + settings.style_weight * values["style"]
                           + settings.tv_weight * values["tv"])
        return values

    def _feature_gradients(self, cores: Mapping[str, torch.Tensor], tile: Tile, height: int,
                           width: int, symmetric: Mapping[str, torch.Tensor]
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The tile's part of the content loss, and the weighted loss's gradient at its cores'
        features, by layer (a layer that is both a content and a style layer gets both)."""
        parts = []
        gradients: dict[str, torch.Tensor] = {}
        share = self.settings.content_weight / len(self.content_targets)
        for name, target in self.content_targets.items():
            _, (rows, cols) = tile.features(name, height, width)
            part, gradient = squared_error_share(cores[name], target[..., rows, cols],
                                                 target.numel(), self.content_energy[name])
            parts.append(part)
            gradients[name] = share * gradient
        for name in self.style_layers:
            gradient = _style_gradient(cores[name], symmetric[name])
            gradients[name] = gradients[name] + gradient if name in gradients else gradient
        return torch.stack(parts).mean(), gradients

    def _tile_done(self, done: int) -> int:
        done += 1
        if self.on_tile is not None:
            self.on_tile(done, self.passes)
        return done


def _fp16_scale(gradients: Iterable[torch.Tensor]) -> float:
    """A power of two that lifts the largest of ``gradients`` to ``FP16_GRADIENT``.

    fp16 ends near 6e-8, and the gradients at the features are often smaller (without
    scaling, conv1_1's share of an image's gradient came out as zero). Backpropagated
    gradients grow, so the largest is lifted well below fp16's limit (65504); a step that
    still overflows leaves a non-finite gradient, and the run goes on in fp32."""
    largest = max(float(g.abs().max()) for g in gradients)
    if not math.isfinite(largest) or largest == 0:
        return 1.0
    return 2.0 ** math.floor(math.log2(FP16_GRADIENT / largest))


def _style_gradient(core: torch.Tensor, symmetric: torch.Tensor) -> torch.Tensor:
    """``symmetric @ F`` for a ``(1, C, h, w)`` core F, in F's memory layout.

    Computed as ``F^T symmetric`` over the positions, which for channels-last features is
    the product of two contiguous matrices and comes out channels-last itself. Unlike a
    Gram matrix this product sums only C terms per entry and is rounded to F's dtype
    anyway, so with bf16 features it runs in bf16 too. Not in fp16, whose range ends near
    6e-8: the entries of ``symmetric`` and of the product are often smaller than that, and
    it stays in fp32 until scaled (:func:`_fp16_scale`)."""
    _, channels, height, width = core.shape
    dtype = torch.float32 if core.dtype == torch.float16 else core.dtype
    flat = core.detach().flatten(2)[0].to(dtype)  # (C, h*w)
    product = flat.T @ symmetric.to(dtype)  # (h*w, C), symmetric == symmetric^T
    return product.T.reshape(1, channels, height, width)


def _core(features: torch.Tensor, tile: Tile, layer: str, height: int, width: int
          ) -> torch.Tensor:
    (rows, cols), _ = tile.features(layer, height, width)
    return features[..., rows, cols]
