"""Memory budgets that make the engine tile, for tests that need a tiled run on small images."""

from __future__ import annotations

import torch

from nst_engine import Settings
from nst_engine.transfer import plan_run

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def budget_for_tiles(settings: Settings, height: int, width: int, tiles: int = 2,
                     style_sizes: tuple[tuple[int, int], ...] = ((48, 48),)) -> int:
    """The largest budget (in 16 MB steps) whose plan cuts the finest scale into at least
    ``tiles`` tiles, on the CPU, in the precision ``settings`` name.

    The precision must be named (``"precision": "fp32"``), not ``auto``: with ``auto`` the
    engine picks bfloat16 where a timed trial finds it faster (this varies between machines,
    and on a busy one between runs), and a bfloat16 job, needing less memory, then fits a
    budget made for float32 untiled."""
    if settings.precision not in DTYPES:
        raise ValueError(f"name the job's precision for its budget, not {settings.precision!r}")
    budget = 8 * 2**30
    while budget > 0:
        plans = plan_run(height, width, settings, style_sizes, budget,
                         DTYPES[settings.precision])
        if len(plans[-1].tiles) >= tiles:
            return budget
        budget -= 16 * 2**20
    raise AssertionError("no budget tiles this image")
