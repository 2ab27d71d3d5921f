"""Memory budgets that make the engine tile, for tests that need a tiled run on small images."""

from __future__ import annotations

import torch

from nst_engine import Settings
from nst_engine.transfer import plan_run


def budget_for_tiles(settings: Settings, height: int, width: int, tiles: int = 2,
                     style_sizes: tuple[tuple[int, int], ...] = ((48, 48),)) -> int:
    """The largest budget (in 16 MB steps) whose plan cuts the finest scale into at least
    ``tiles`` tiles, on the CPU in float32.

    A job sent to a server with this budget must say ``"precision": "fp32"``: with ``auto`` a
    server picks bfloat16 on a CPU that is fast at it, and a bfloat16 job, needing less
    memory, then fits the budget untiled."""
    budget = 8 * 2**30
    while budget > 0:
        plans = plan_run(height, width, settings, style_sizes, budget, torch.float32)
        if len(plans[-1].tiles) >= tiles:
            return budget
        budget -= 16 * 2**20
    raise AssertionError("no budget tiles this image")
