"""Image conversions and the colour operations of the method.

The engine works on float32 arrays in 0..1 (H, W, C) so that 8-bit, 16-bit and float
inputs all keep their precision; PIL images are accepted and returned for convenience.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

ImageLike = Image.Image | np.ndarray

# ITU-R BT.601 luma weights: what "luminance" means for the colour-preserving transfer.
_LUMA = (0.299, 0.587, 0.114)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file, turning every failure into one :class:`ImageError` line."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise ImageError(f"image '{path}': no such file") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ImageError(f"image '{path}': cannot be read as an image ({error})") from None


def to_array(image: ImageLike, name: str = "image") -> np.ndarray:
    """An RGB or RGBA float32 array in 0..1 from a PIL image or an array."""
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a PIL image or a numpy array, got {type(image)}")
    array = image
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(f"{name}: array must be (H, W, 3) or (H, W, 4), got {image.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{name}: array is empty")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageError(f"{name}: unsupported array type {array.dtype}")
    if not np.isfinite(array[..., :3]).all():
        raise ImageError(f"{name}: contains NaN or infinite values")
    return array.astype(np.float32, copy=False)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image, dtype=np.float32) / (65535.0 if image.mode != "I" else 2**31 - 1)
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
    if image.mode == "F":
        return np.repeat(np.asarray(image, dtype=np.float32)[..., None], 3, axis=2)
    converted = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(converted, dtype=np.float32) / 255.0


def from_array(array: np.ndarray) -> Image.Image:
    """An 8-bit RGB or RGBA PIL image from a float array in 0..1."""
    data = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(data, "RGBA" if array.shape[2] == 4 else "RGB")


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """A ``(1, 3, H, W)`` float32 tensor from an (H, W, 3) array."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """The (H, W, 3) float32 array of a ``(1, 3, H, W)`` tensor."""
    return tensor[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize with antialiasing (so downscaling does not alias), kept in 0..1."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(
        image, size=size, mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """The ``(N, 1, H, W)`` luma of an RGB batch."""
    weights = torch.tensor(_LUMA, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


def replace_luminance(rgb: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
    """``rgb`` with its luma replaced by ``luma``, chroma kept (a shift along grey)."""
    return (rgb + (luma - luminance(rgb))).clamp(0, 1)


def match_luminance(style_luma: torch.Tensor, content_luma: torch.Tensor) -> torch.Tensor:
    """Style luma with the content luma's mean and spread, as Gatys et al. (2016) advise
    for luminance-only transfer, so the content's tonal range is kept."""
    s_mean, s_std = style_luma.mean(), style_luma.std().clamp_min(1e-5)
    c_mean, c_std = content_luma.mean(), content_luma.std()
    return ((style_luma - s_mean) * (c_std / s_std) + c_mean).clamp(0, 1)


def match_color(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Recolour ``style`` so its RGB mean and covariance equal ``content``'s.

    The linear map ``C_c^{1/2} C_s^{-1/2}`` (Gatys et al. 2016, "colour histogram
    matching") changes the palette but keeps the style's brush-work."""
    s = style[0].flatten(1).double()
    c = content[0].flatten(1).double()
    s_mean, c_mean = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    eye = torch.eye(3, dtype=s.dtype, device=s.device) * 1e-5
    s_cov = torch.cov(s) + eye
    c_cov = torch.cov(c) + eye
    transform = _matrix_power(c_cov, 0.5) @ _matrix_power(s_cov, -0.5)
    matched = transform @ (s - s_mean) + c_mean
    return matched.float().view_as(style).clamp(0, 1)


def _matrix_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(1e-8) ** power) @ vectors.T
