"""Shared fixtures for the engine's unit tests: one loaded engine and tiny images."""

from __future__ import annotations

import numpy as np
import pytest

from nst_engine import Settings, StyleTransfer


@pytest.fixture(scope="session")
def engine() -> StyleTransfer:
    """The real default (offline) weights on the CPU, loaded once for the whole run."""
    return StyleTransfer("default", device="cpu")


@pytest.fixture
def content() -> np.ndarray:
    """A 40x48 RGBA float image: a gradient with a disc, and a varied alpha channel."""
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    disc = ((x - 24) ** 2 + (y - 20) ** 2 < 120).astype(np.float32)
    rgb = np.stack([x / 47, y / 39, disc], axis=2)
    alpha = np.random.default_rng(1).random((40, 48, 1), dtype=np.float32)
    return np.concatenate([rgb, alpha], axis=2)


@pytest.fixture
def style() -> np.ndarray:
    """A 48x48 stripy RGB float image."""
    y, x = np.mgrid[0:48, 0:48].astype(np.float32)
    stripes = (np.sin((x + 2 * y) / 2.5) > 0).astype(np.float32)
    return np.stack([stripes, 0.3 + 0.4 * stripes, 1 - stripes], axis=2)


@pytest.fixture
def tiny():
    """Settings for a run of a few iterations at one scale (seconds on a CPU), with overrides."""

    def make(**overrides) -> Settings:
        values = {"preset": "draft", "size": 48, "scales": 1, "initial_iterations": 4,
                  "preview_every": 0, "seed": 0, **overrides}
        return Settings.from_dict(values)

    return make
