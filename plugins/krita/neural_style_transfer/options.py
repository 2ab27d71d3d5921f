"""Turn the dialog's artist-facing choices into the server's engine settings.

Pure functions (no Qt) so the mapping is unit-tested. Strength and "content kept" are 0-100
sliders on a logarithmic scale: 50 is the engine's default balance, each 25 steps is x10.
"""

from __future__ import annotations

PRESETS = ("draft", "balanced", "high", "paper")
DEFAULT_STYLE_WEIGHT = 10.0
DEFAULT_CONTENT_WEIGHT = 1.0


def slider_factor(value: int) -> float:
    """50 -> 1, 75 -> 10, 25 -> 0.1 (0 -> 0.01, 100 -> 100)."""
    return 10.0 ** ((max(0, min(100, value)) - 50) / 25.0)


def engine_settings(
    preset: str = "balanced",
    strength: int = 50,
    content_kept: int = 50,
    preserve_colors: bool = False,
    seed: int | None = None,
) -> dict:
    """Settings for ``POST /v1/jobs``; ``seed`` None means a new random result each time."""
    if preset not in PRESETS:
        raise ValueError(f"unknown quality preset {preset!r}")
    settings = {
        "preset": preset,
        "style_weight": round(DEFAULT_STYLE_WEIGHT * slider_factor(strength), 6),
        "content_weight": round(DEFAULT_CONTENT_WEIGHT * slider_factor(content_kept), 6),
        "preserve_colors": bool(preserve_colors),
    }
    if seed is not None:
        settings["seed"] = int(seed)
    return settings


def push_recent(recent: list[str], path: str, limit: int = 8) -> list[str]:
    """Most recent style first, no duplicates, at most ``limit`` entries."""
    return ([path] + [p for p in recent if p != path])[:limit]


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left..."
    seconds = round(seconds)
    if seconds >= 60:
        return f"about {seconds // 60} min {seconds % 60:02d} s left"
    return f"about {seconds} s left"


def describe_health(health: dict) -> str:
    """One line for the dialog: connected, device, queue."""
    queue = health.get("queue_length", 0)
    waiting = "queue empty" if not queue else f"{queue} job{'s' if queue != 1 else ''} queued"
    return f"Server connected: {health.get('device', '?')}, {waiting}"
