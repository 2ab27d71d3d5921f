"""The engine's exceptions: one base class, so callers (the CLI, the server) can catch
everything the engine raises on bad input and show it as one line."""

from __future__ import annotations

import os


class NSTError(Exception):
    """Base class of every error the engine raises for bad input or a stopped run."""


class SettingsError(NSTError, ValueError):
    """A setting is unknown, of the wrong type, or out of range; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"setting '{setting}': {message}")
        self.setting = setting


class WeightsError(NSTError):
    """A weights file is missing, truncated, or does not hold VGG-19's layers."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        super().__init__(f"weights file '{path}': {message}")
        self.path = str(path)


class ImageError(NSTError):
    """An input image cannot be read or has a shape the engine cannot use."""


class Cancelled(NSTError):
    """The run was stopped through its :class:`~nst_engine.CancelToken`."""
