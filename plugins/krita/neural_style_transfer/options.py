"""What the Krita dialog adds to the shared options (``nst_options``): its list of recent
styles. A pure function (no Qt), so it is unit-tested."""

from __future__ import annotations


def push_recent(recent: list[str], path: str, limit: int = 8) -> list[str]:
    """Most recent style first, no duplicates, at most ``limit`` entries."""
    return ([path] + [p for p in recent if p != path])[:limit]
