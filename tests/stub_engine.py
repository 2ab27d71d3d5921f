"""A stand-in for the engine, so the real server (``create_app``) runs jobs in milliseconds.

It does what the server needs of :class:`nst_engine.StyleTransfer` and nothing else: describe
itself, its memory budget and plan (every job fits), and ``stylize`` by handing the content
back, reporting each iteration (with a preview to render on request) and honouring the cancel
token exactly as the engine does. Tests steer it: ``fail_with`` makes the next run fail as the
engine would, ``hold`` keeps each iteration waiting until released, ``pause_after`` holds the
run once that iteration has been reported.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from nst_engine import Cancelled, CancelToken, NSTError, Progress, Settings


class StubEngine:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.fail_with: str | None = None
        self.hold = threading.Event()
        self.hold.set()  # set: iterations run freely; clear it to hold the run at each one
        self.pause_after: int | None = None

    def describe(self) -> dict:
        return {"device": "stub", "weights": "stub", "precision": "fp32"}

    def budget(self, settings: Settings | None = None) -> int:
        return 2**30

    def plan(self, height: int, width: int, settings: Settings, style_sizes=()) -> list:
        return []

    def stylize(self, content: np.ndarray, styles: list[np.ndarray], settings: Settings, *,
                style_blend_weights: list[float] | None = None, callback=None,
                cancel: CancelToken | None = None) -> np.ndarray:
        self.calls.append({"content": content, "styles": styles, "settings": settings,
                           "blend": style_blend_weights})
        if self.fail_with is not None:
            raise NSTError(self.fail_with)
        total = settings.total_iterations(content.shape[0], content.shape[1])
        preview = Image.fromarray((np.clip(content[..., :3], 0, 1) * 255).astype(np.uint8))

        def render(side: int) -> Image.Image:
            image = preview.copy()
            image.thumbnail((side, side))
            return image

        for iteration in range(1, total + 1):
            while not self.hold.wait(0.01):
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("cancelled")
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
            if callback is not None:
                callback(Progress(iteration, total, 0, 1, {"total": 1.0 / iteration}, 0.0,
                                  float(total - iteration), render=render))
            if iteration == self.pause_after:
                self.hold.clear()
        return content
