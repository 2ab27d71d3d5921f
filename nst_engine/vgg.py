"""VGG-19's convolutional stack with named layers, frozen, for feature extraction."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LAYER_NAMES, depth
from .weights import Preprocessing, Weights


class VGG19(nn.Module):
    """The sixteen convolutions of VGG-19; ReLU and pooling are applied in :meth:`forward`.

    Pooling is chosen per call (max or average) since it has no weights, so one loaded
    model serves runs with either. A forward pass stops after the deepest layer asked for,
    so a run that reads only ``conv4_2`` never computes block 5.
    """

    def __init__(self, weights: Weights) -> None:
        super().__init__()
        self.preprocessing: Preprocessing = weights.preprocessing
        self.description = weights.description
        self.convs = nn.ModuleDict()
        for name, (weight, bias) in weights.convs.items():
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=1)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.convs[name] = conv
        self.requires_grad_(False)
        self.eval()

    def forward(
        self, image: torch.Tensor, layers: Iterable[str], pooling: str = "max"
    ) -> dict[str, torch.Tensor]:
        """Features of ``image`` (an RGB ``(N, 3, H, W)`` batch in 0..1) at ``layers``."""
        wanted = set(layers)
        last = max(depth(name) for name in wanted)
        pool = F.max_pool2d if pooling == "max" else F.avg_pool2d
        x = self.preprocessing.apply(image)
        features: dict[str, torch.Tensor] = {}
        for name in LAYER_NAMES[: last + 1]:
            if name.startswith("conv"):
                x = self.convs[name](x)
            elif name.startswith("relu"):
                x = F.relu(x)
            else:
                x = pool(x, kernel_size=2, stride=2, ceil_mode=True)
            if name in wanted:
                features[name] = x
        return features
