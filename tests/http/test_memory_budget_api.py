"""Full resolution over HTTP: the memory budget in health, 413 before storing what cannot fit,
and a tiled job's plan and progress in its status."""

from __future__ import annotations

import io
import time

import numpy as np
from budgets import budget_for_tiles
from conftest import get, png_bytes, rgba_pixels, submit
from PIL import Image

from nst_engine import Settings


def test_health_reports_the_memory_budget(live_server):
    health = get(live_server, "/v1/health").json()
    assert health["memory_budget"] > 2**30
    assert health["memory_budget_source"] == "auto"


def test_a_job_that_cannot_fit_even_in_tiles_is_refused_with_what_would(live_server, style_png):
    content = png_bytes(np.zeros((2000, 3000, 3), np.uint8))
    answer = submit(live_server, content, style_png,
                    settings={"preset": "full", "memory_budget": "1GB"})
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "over_memory_budget" and error["setting"] == "memory_budget"
    assert error["message"].startswith("This job does not fit in memory: a ")
    assert "scale needs at least" in error["message"] and "1.00 GB" in error["message"]
    assert "px on its longest side fits" in error["message"]


def test_a_tiled_full_resolution_job_reports_its_plan_and_tiles(live_server, style_png):
    pixels = rgba_pixels(width=400, height=260, seed=5)
    settings = {"preset": "full", "size": 64, "scales": 1, "initial_iterations": 1,
                "full_iterations": 2, "precision": "fp32"}  # the budget's (budgets.py)
    budget = budget_for_tiles(Settings.from_dict(settings), 260, 400, style_sizes=((32, 32),))
    job = submit(live_server, png_bytes(pixels), style_png,
                 settings={**settings, "memory_budget": budget}).json()
    seen = []  # (iteration, tile, tiles, percent) while running
    deadline = time.monotonic() + 120
    while (status := get(live_server, job["urls"]["self"]).json())["state"] in ("queued",
                                                                                 "running"):
        assert time.monotonic() < deadline, status
        if status["state"] == "running":
            seen.append((status["iteration"], status["tile"], status["tiles"],
                         status["percent"]))
        time.sleep(0.05)
    assert status["state"] == "done", status
    assert "400x260" in status["plan"] and "tiles" in status["plan"]
    # Progress moved within the tiled iterations, not only between them.
    assert any(tile > 0 and tiles >= 4 for _, tile, tiles, _ in seen), seen
    percents = [percent for *_, percent in seen]
    assert percents == sorted(percents)
    out = np.asarray(Image.open(io.BytesIO(get(live_server, job["urls"]["result"]).content)))
    assert out.shape == pixels.shape
    np.testing.assert_array_equal(out[..., 3], pixels[..., 3])


def test_a_huge_style_scale_is_refused(live_server, style_png):
    """size 8192 with style_scale 8 resizes the style to 8 times the content: here 32768 px
    square, over 12 GB for the style image alone. The budget is set so that the answer does
    not depend on the free memory of the machine that runs the test."""
    content = png_bytes(np.zeros((2048, 4096, 3), np.uint8))
    answer = submit(live_server, content, style_png,
                    settings={"size": 8192, "style_scale": 8, "memory_budget": "8GB"})
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "over_memory_budget"
