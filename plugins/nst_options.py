"""What the plugins' dialogs offer, turned into server settings and artist-facing text.

Shared by the Krita and GIMP plugins so that the same choices give the same result in both
editors: a strength of 70 in GIMP must mean exactly what it means in Krita. Standard library only
and free of any editor API (the installers copy it beside each plugin, like ``nst_client``), so it
is unit-tested outside the editors.

Strength and "content kept" are 0-100 sliders on a logarithmic scale: 50 is the engine's default
balance, each 25 steps is x10. A seed of 0 means "random": a new result each run.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DEFAULT_CONTENT_WEIGHT",
    "DEFAULT_PRESET",
    "PRESETS",
    "PRESET_HINT",
    "PRESET_LABELS",
    "STYLE_WEIGHTS",
    "describe_health",
    "describe_progress",
    "engine_settings",
    "format_eta",
    "layer_name",
    "preview_layer_name",
    "slider_factor",
]

# The engine's presets, default preset and default weights, copied because the editors cannot
# import the engine; tests/unit/test_nst_options.py fails when they drift apart.
PRESETS = ("draft", "balanced", "high", "full", "paper")
DEFAULT_PRESET = "balanced"
#: Each preset's own style weight: ``draft`` runs few iterations, in which a lower weight
#: brings the content back sooner; ``paper`` keeps the raw convolutions' layers and their 10.
STYLE_WEIGHTS = {"draft": 5.0, "balanced": 7.0, "high": 7.0, "full": 7.0, "paper": 10.0}
DEFAULT_CONTENT_WEIGHT = 1.0

#: What the dialogs show for each preset.
PRESET_LABELS = {
    "draft": "Draft (quick look)",
    "balanced": "Balanced",
    "high": "High (1024 px, upscaled)",
    "full": "Full resolution (every pixel; slow without a GPU)",
    "paper": "Paper (slow, for print)",
}
PRESET_HINT = ("Draft is quick. High works at 1024 px and upscales; Full resolution works at "
               "the layer's own size, in tiles if needed, and takes much longer.")


def slider_factor(value: int) -> float:
    """50 -> 1, 75 -> 10, 25 -> 0.1 (0 -> 0.01, 100 -> 100)."""
    return 10.0 ** ((max(0, min(100, value)) - 50) / 25.0)


def engine_settings(
    preset: str = DEFAULT_PRESET,
    strength: int = 50,
    content_kept: int = 50,
    preserve_colors: bool = False,
    seed: int | None = None,
) -> dict:
    """Settings for ``POST /v1/jobs``; ``seed`` None or 0 means a new random result each time."""
    if preset not in PRESETS:
        raise ValueError(f"unknown quality preset {preset!r}")
    settings = {
        "preset": preset,
        "style_weight": round(STYLE_WEIGHTS[preset] * slider_factor(strength), 6),
        "content_weight": round(DEFAULT_CONTENT_WEIGHT * slider_factor(content_kept), 6),
        "preserve_colors": bool(preserve_colors),
    }
    if seed:
        settings["seed"] = int(seed)
    return settings


def layer_name(style_path: str) -> str:
    """The result layer is named after the style so several tries stay tellable apart."""
    return f"{Path(style_path).stem} (style transfer)"


def preview_layer_name(style_path: str) -> str:
    """The layer the preview fills in while the job runs. "Preview" comes first: the Layers
    docker cuts long names at the end, and the word must show."""
    return f"Preview: {Path(style_path).stem}"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left..."
    seconds = round(seconds)
    if seconds >= 60:
        return f"about {seconds // 60} min {seconds % 60:02d} s left"
    return f"about {seconds} s left"


def describe_progress(status: dict) -> str:
    """One line for a progress bar from a job status: queue position, or iteration and ETA."""
    if status.get("state") == "queued":
        position = status.get("queue_position")
        if position is None:
            return "Waiting in the server's queue..."
        return f"Waiting in the server's queue (position {position})..."
    # A full-resolution iteration can take minutes: say which tile it is at.
    tiles = status.get("tiles") or 0
    tile = f" (part {status.get('tile', 0) % tiles + 1} of {tiles})" if tiles else ""
    return (
        f"Iteration {status.get('iteration', 0)} of {status.get('total', '?')}{tile}, "
        f"{format_eta(status.get('eta'))}"
    )


def describe_health(health: dict) -> str:
    """The dialogs' one-line server status from ``GET /v1/health``: connected, device, queue.

    One text for both editors, so an artist (or a support answer) reads the same line in each."""
    queue = health.get("queue_length") or 0
    waiting = "queue empty" if not queue else f"{queue} job{'s' if queue != 1 else ''} queued"
    return f"Server connected: {health.get('device', '?')}, {waiting}"
