"""What the Krita dialog adds to the shared options (``nst_options``): its list of recent
styles and its one-line server status. Pure functions (no Qt), so they are unit-tested."""

from __future__ import annotations


def push_recent(recent: list[str], path: str, limit: int = 8) -> list[str]:
    """Most recent style first, no duplicates, at most ``limit`` entries."""
    return ([path] + [p for p in recent if p != path])[:limit]


def describe_health(health: dict) -> str:
    """One line for the dialog: connected, device, queue."""
    queue = health.get("queue_length", 0)
    waiting = "queue empty" if not queue else f"{queue} job{'s' if queue != 1 else ''} queued"
    return f"Server connected: {health.get('device', '?')}, {waiting}"
