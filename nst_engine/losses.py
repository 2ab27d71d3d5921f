"""The three loss terms of Gatys et al., always computed in float32.

Features may arrive in bfloat16 or float16 from reduced-precision convolutions. A Gram
matrix sums H*W products and would lose most of its digits in 16-bit arithmetic, so it is
summed in float32: from bfloat16 features in partial sums over :data:`GRAM_CHUNK` positions
(see :func:`gram_sum`), from any other dtype after upcasting, and the loss terms after
upcasting too.
"""

from __future__ import annotations

import torch

_EPS = 1e-8
#: Positions per partial Gram matrix of bfloat16 features (see :func:`gram_sum`).
GRAM_CHUNK = 1024


def gram_sum(features: torch.Tensor) -> torch.Tensor:
    """``F F^T`` summed over the positions of ``(1, C, h, w)`` features, in float32.

    bfloat16 features are multiplied in bfloat16, :data:`GRAM_CHUNK` positions at a time,
    and the partial matrices added in float32. A bfloat16 matrix product accumulates in
    float32 and rounds only its result, so each partial sum carries one rounding (2**-8 at
    most, relative) and the whole sum no more, every term of a ReLU's Gram matrix being
    positive. On the astronaut at 1024 px that moves each style layer's Gram matrix by 6e-5
    to 1e-3 of its norm, where the bfloat16 convolutions that made the features had already
    moved it by 3e-3 to 5e-3 from float32's. The upcast copy and float32 product it replaces
    took a sixth of an iteration at 1024 px on a CPU, the bfloat16 products a sixth of that
    (README, "Ninth measurement"). Other dtypes are upcast and multiplied in float32."""
    if features.dtype != torch.bfloat16:
        flat = features.float().flatten(2)[0]
        return flat @ flat.T
    # In channels-last memory the positions are the rows of a (h*w, C) matrix: chunks of
    # rows are views (the engine's features are channels-last; a tile's core is copied).
    channels = features.shape[1]
    rows = features.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
    rows = rows.reshape(-1, channels)
    whole = rows.shape[0] - rows.shape[0] % GRAM_CHUNK
    total = rows.new_zeros((channels, channels), dtype=torch.float32)
    if whole:
        chunks = rows[:whole].view(-1, GRAM_CHUNK, channels)
        total += torch.bmm(chunks.transpose(1, 2), chunks).sum(0, dtype=torch.float32)
    if whole < rows.shape[0]:
        rest = rows[whole:]
        total += (rest.T @ rest).float()
    return total


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """The ``(C, C)`` Gram matrix of ``(1, C, H, W)`` features, divided by H*W so it does
    not grow with the image size."""
    _, _, height, width = features.shape
    return gram_sum(features) / (height * width)


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
