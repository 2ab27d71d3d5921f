"""Small images and a submit helper for the HTTP tests (the server fixture is in tests/)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from live_server import LiveServer
from PIL import Image

#: A run of a few milliseconds: the tests check the plumbing, not the painting.
QUICK = {"preset": "draft", "size": 32, "scales": 1, "initial_iterations": 2}
#: A run long enough (tens of seconds) to be cancelled, killed or queued behind.
LONG = {"preset": "draft", "size": 32, "scales": 1, "initial_iterations": 4000}


def rgba_pixels(width: int = 24, height: int = 16, seed: int = 0) -> np.ndarray:
    """Noisy colour over a gradient, and every alpha from clear to opaque."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 4), dtype=np.uint8)
    pixels[..., 3] = np.linspace(0, 255, width * height).reshape(height, width).astype(np.uint8)
    return pixels


def png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def style_png() -> bytes:
    y, x = np.mgrid[0:32, 0:32]
    stripes = ((x + y) // 4 % 2 * 255).astype(np.uint8)
    return png_bytes(np.stack([stripes, 255 - stripes, stripes // 2], axis=2))


def submit(server: LiveServer, content: bytes, style: bytes | list[bytes], *,
           settings: dict | None = None, layout: dict | None = None,
           headers: dict | None = None, **fields: str | bytes) -> requests.Response:
    """POST /v1/jobs as a client would; extra ``fields`` become form fields or file parts."""
    styles = style if isinstance(style, list) else [style]
    files = [("content", ("content.bin", content))]
    files += [("style", (f"style{i}.png", data)) for i, data in enumerate(styles)]
    data = {"settings": json.dumps(QUICK if settings is None else settings)}
    if layout is not None:
        data["layout"] = json.dumps(layout)
    for name, value in fields.items():
        if isinstance(value, bytes):
            files.append((name, (name, value)))
        else:
            data[name] = value
    return requests.post(f"{server.url}/v1/jobs", files=files, data=data, timeout=30,
                         headers=server.headers() if headers is None else headers)


def get(server: LiveServer, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers=server.headers(), timeout=30, **kwargs)
