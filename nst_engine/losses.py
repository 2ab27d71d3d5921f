"""The three loss terms of Gatys et al., always computed in float32.

Features may arrive in bfloat16 or float16 from reduced-precision convolutions; every
function here upcasts first, because a Gram matrix sums H*W products and loses most of
its digits in 16-bit arithmetic.
"""

from __future__ import annotations

import torch

_EPS = 1e-8


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """The ``(C, C)`` Gram matrix of ``(1, C, H, W)`` features, divided by H*W so it does
    not grow with the image size."""
    _, channels, height, width = features.shape
    flat = features.float().reshape(channels, height * width)
    return (flat @ flat.T) / (height * width)


def relative_mse(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error divided by the target's mean square.

    Dividing by the target's energy makes each layer's term scale-free, so layer and
    loss weights mean the same for any layer depth, image size or weights file."""
    target = target.float()
    return (value.float() - target).square().mean() / (target.square().mean() + _EPS)


def squared_error_share(value: torch.Tensor, target: torch.Tensor, count: int,
                        energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One part's share of :func:`relative_mse` over a whole map that is cut into parts, and
    the share's gradient with respect to ``value`` (float32, not through autograd).

    ``count`` and ``energy`` are the whole target's element count and mean square, so the
    shares of parts that cover the map add up to the whole map's relative error."""
    error = value.detach().float() - target.float()
    denominator = count * (energy + _EPS)
    return error.square().sum() / denominator, error * (2 / denominator)


def content_loss(
    features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Mean relative error of the features at the content layers."""
    terms = [relative_mse(features[name], target) for name, target in targets.items()]
    return torch.stack(terms).mean()


def style_loss(
    features: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    layer_weights: dict[str, float],
) -> torch.Tensor:
    """Weighted relative error of the Gram matrices; ``layer_weights`` sum to one.

    ``targets`` holds one Gram matrix per layer; several style images are blended by
    averaging their Gram matrices first (see ``StyleTransfer``)."""
    terms = [
        weight * relative_mse(gram_matrix(features[name]), targets[name])
        for name, weight in layer_weights.items()
    ]
    return torch.stack(terms).sum()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels: penalises high-frequency noise."""
    image = image.float()
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.square().mean() + dy.square().mean()
