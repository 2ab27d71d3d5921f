"""GIMP's GTK toolkit for the plug-in's windows, loaded only when a window is shown.

Batch and script runs may have no display, so ``GimpUi`` and ``Gtk`` are imported on first use,
never at module import. ``GimpUi.init`` connects GTK to GIMP's theme and lets the windows be
made transient for GIMP's; it may be called more than once (GIMP ignores the repeats).
"""

from __future__ import annotations

from types import ModuleType


def toolkit(program: str) -> tuple[ModuleType, ModuleType]:
    """``(GimpUi, Gtk)``, initialised for ``program`` (the procedure's name)."""
    import gi

    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk

    GimpUi.init(program)
    return GimpUi, Gtk
