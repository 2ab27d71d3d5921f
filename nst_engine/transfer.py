"""The optimiser: :class:`StyleTransfer` loads VGG-19 once and stylises many images.

One run, following Gatys et al.: compute the content features and the style images'
Gram matrices, then optimise the pixels of an image so its features match both, with
L-BFGS (or Adam). Runs go coarse to fine: each scale starts from the previous result
upsampled, so most of the style forms cheaply at low resolution.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from . import allocator, images, memory, tiling
from .device import precision_name, resolve_precision, select_device
from .errors import Cancelled, ImageError, SettingsError
from .objective import Network, Objective
from .settings import MIN_SCALE_SIDE, PLATEAU_WINDOW, Settings, fit
from .vgg import VGG19
from .weights import Weights, load_weights

#: Previews are made at most this large: enough for any preview a client shows, and cheap
#: to make even when the run works on a 16-megapixel image.
PREVIEW_SIDE = 2048
#: Amplitude of the seeded noise added to the start image of the first scale (0-1 range).
#: L-BFGS from the bare content is deterministic, so without it every seed would give the same
#: image; the style loss has many equally good minima, and this nudge picks a different one for
#: each seed (a new arrangement of the style's strokes) while too faint to show as grain.
SEED_VARIATION = 0.05

#: Largest change of a pixel (0-1 range) in the first L-BFGS step of each scale, along the
#: gradient; after it L-BFGS sizes its own steps from curvature. See ``_first_lbfgs_step``.
FIRST_STEP = 0.05

Source = Image.Image | np.ndarray | str | os.PathLike


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives after every iteration."""

    iteration: int
    total: int
    scale: int
    scales: int
    losses: dict[str, float]
    elapsed: float
    #: Seconds left, or None while the run has no stable rate yet: its first report (the first
    #: iteration, or tile pass) pays for warming up caches and kernels, so the rate is measured
    #: from there on, and a first guess from it was up to 7 times too long.
    eta: float | None
    #: The current image at the processing size (at most ``PREVIEW_SIDE``), every
    #: ``preview_every`` iterations.
    preview: Image.Image | None = field(default=None, repr=False)
    #: Makes a preview of the current image now, its longest side at most the given number
    #: of pixels; after each iteration, and only during the callback (the image changes
    #: after it). For a client that shows previews only when asked, at the size it shows
    #: them: nothing is made unless it is called.
    render: Callable[[int], Image.Image] | None = field(default=None, repr=False)
    #: Within an iteration of a tiled scale: passes over tiles done, of ``tiles``. Each
    #: iteration passes over every tile twice (Gram matrices, then gradients); reports with
    #: ``tile < tiles`` come between iterations' reports. Both are 0 when untiled.
    tile: int = 0
    tiles: int = 0
    #: How the current scale runs: its size, tiles, optimiser and memory estimate.
    plan: str = ""
    #: Work done and in all, in pixels through a forward and backward pass (halos and tile
    #: passes included): a rate per unit measured on one job predicts another of any size.
    work_done: float = 0.0
    work_total: float = 0.0


class CancelToken:
    """Cancels a run from any thread: the run raises :class:`Cancelled` within one iteration."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


ProgressCallback = Callable[[Progress], None]


class StyleTransfer:
    """A loaded VGG-19 on one device, ready to stylise any number of images.

    Keep one instance and call :meth:`stylize` for each job: the weights are loaded
    once, and the style images' Gram matrices are cached by content, so reusing a style
    skips recomputing them. Runs on one instance are serialised.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | Weights = "default",
        device: str = "auto",
        *,
        download: bool = False,
        style_cache_size: int = 16,
        memory_budget: int | None = None,
    ) -> None:
        """``memory_budget``: bytes a run may use at most (None: a safe share of the memory
        that is free when the run starts); a setting can lower it for one run."""
        self.device = select_device(device)
        self.memory_budget = memory_budget
        if self.device.type == "cpu":
            allocator.share_main_heap()  # before a server starts the thread that runs jobs
        loaded = (
            weights if isinstance(weights, Weights) else load_weights(weights, download=download)
        )
        self.model = VGG19(loaded).to(self.device)
        if self.device.type != "mps":
            self.model.to(memory_format=torch.channels_last)
        self._style_cache: OrderedDict[tuple, dict[str, torch.Tensor]] = OrderedDict()
        self._style_cache_size = style_cache_size
        self._lock = threading.Lock()

    def describe(self) -> dict[str, str]:
        """Device, weights and default precision, for logs and health reports."""
        precision = precision_name(resolve_precision(self.device, "auto"))
        return {"device": str(self.device), "weights": self.model.description,
                "precision": precision}

    def plan(self, height: int, width: int, settings: Settings,
             style_sizes: Sequence[tuple[int, int]] = (), budget: int | None = None
             ) -> list[memory.ScalePlan]:
        """How a run on a ``height`` x ``width`` content would spend memory, scale by scale.

        Raises :class:`SettingsError` for ``memory_budget`` when a scale cannot fit even in
        tiles, saying how much it needs and the largest content size that would fit. The
        server calls this before accepting a job; :meth:`stylize` before its first step, with
        the ``budget`` it runs under (by default :meth:`budget`, which reads free memory)."""
        budget = budget or self.budget(settings)
        dtype = resolve_precision(self.device, settings.precision)

        def fits(h: int, w: int) -> bool:
            try:
                plan_run(h, w, settings, style_sizes, budget, dtype)
            except memory.BudgetError:
                return False
            return True

        try:
            return plan_run(height, width, settings, style_sizes, budget, dtype)
        except memory.BudgetError as error:
            side = memory.largest_fitting_side(height, width, fits)
            hint = (f"; a content up to {side} px on its longest side fits" if side
                    else "; raise the budget")
            raise SettingsError("memory_budget", f"{error}{hint}") from None

    def budget(self, settings: Settings | None = None) -> int:
        """Bytes a run may use: the setting, the engine's budget, or a share of free memory,
        whichever is lowest."""
        budget = self.memory_budget or memory.default_budget(self.device.type,
                                                             self.device.index)
        if settings is not None and settings.memory_budget is not None:
            budget = min(budget, settings.memory_budget)
        return budget

    def stylize(
        self,
        content: Source,
        styles: Sequence[Source],
        settings: Settings | None = None,
        *,
        style_blend_weights: Sequence[float] | None = None,
        callback: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Image.Image | np.ndarray:
        """Stylise ``content`` with ``styles`` and return an image of the same kind.

        ``content`` and ``styles`` are PIL images, (H, W, 3|4) arrays (float in 0..1,
        uint8 or uint16) or file paths. The result has the content's exact size; its
        alpha channel is the content's, copied bit for bit, since only colour is
        stylised. Arrays come back with the input's dtype, paths and PIL images as PIL.
        """
        settings = settings or Settings()
        if not styles:
            raise ImageError("at least one style image is needed")
        blend = _blend_weights(style_blend_weights, len(styles))
        source = images.load_image(content) if isinstance(content, (str, os.PathLike)) else content
        array = images.to_array(source, "content")
        style_arrays = [
            images.to_array(images.load_image(s) if isinstance(s, (str, os.PathLike)) else s,
                            f"style {i + 1}")[..., :3]
            for i, s in enumerate(styles)
        ]
        init = None
        if settings.init == "image":
            init = images.to_array(images.load_image(settings.init_image), "init_image")[..., :3]
        with self._lock:
            run = _Run(self, array, style_arrays, blend, init, settings, callback, cancel)
            rgb = run.execute()
        return _like(source, rgb)

    # Used by _Run: cached, blended Gram matrices of the styles at one size.
    def style_targets(
        self, styles: list[torch.Tensor], blend: list[float], settings: Settings,
        dtype: torch.dtype, salt: bytes, budget: int,
    ) -> dict[str, torch.Tensor]:
        layers = tuple(settings.style_layers)
        digest = hashlib.sha256(salt)
        for style in styles:
            digest.update(style.detach().cpu().numpy().tobytes())
            digest.update(str(tuple(style.shape)).encode())
        key = (digest.hexdigest(), tuple(blend), layers, settings.pooling, dtype)
        if key in self._style_cache:
            self._style_cache.move_to_end(key)
            return self._style_cache[key]
        blended: dict[str, torch.Tensor] = {}
        network = Network(self.model, settings.pooling, dtype, self.device)
        for style, weight in zip(styles, blend, strict=True):
            tiles = _feature_tiles(style, layers, dtype, budget)
            for name, gram in network.gram_matrices(style, layers, tiles).items():
                blended[name] = blended[name] + gram * weight if name in blended else gram * weight
        self._style_cache[key] = blended
        while len(self._style_cache) > self._style_cache_size:
            self._style_cache.popitem(last=False)
        return blended


def stylize(
    content: Source,
    styles: Sequence[Source],
    settings: Settings | None = None,
    *,
    weights: str | os.PathLike[str] = "default",
    device: str = "auto",
    **options,
) -> Image.Image | np.ndarray:
    """One call: load the model, stylise once. Keep a :class:`StyleTransfer` for more."""
    return StyleTransfer(weights, device).stylize(content, styles, settings, **options)


class _Run:
    """The state of one stylisation; lives only for the duration of :meth:`execute`."""

    def __init__(self, engine: StyleTransfer, content: np.ndarray, styles: list[np.ndarray],
                 blend: list[float], init: np.ndarray | None, settings: Settings,
                 callback: ProgressCallback | None, cancel: CancelToken | None) -> None:
        self.engine, self.settings = engine, settings
        self.device = engine.device
        self.dtype = resolve_precision(self.device, settings.precision)
        self.callback, self.cancel = callback, cancel
        self.height, self.width = content.shape[:2]
        self.alpha = content[..., 3] if content.shape[2] == 4 else None
        self._alpha_cache: tuple[tuple[int, int], np.ndarray] | None = None
        self.content = images.to_tensor(content[..., :3], self.device)
        self.styles = [images.to_tensor(s, self.device) for s in styles]
        self.blend = blend
        self.init = init
        self.sizes = settings.scale_sizes(self.height, self.width)
        self.iterations = settings.scale_iterations(self.height, self.width)
        self.budget = engine.budget(settings)
        # Every scale is planned before the first step, so a run that cannot fit fails now.
        self.plans = engine.plan(self.height, self.width, settings,
                                 [s.shape[:2] for s in styles], self.budget)
        # Work units (iterations weighted by pixels processed, halos and tile passes included)
        # make the ETA honest across scales.
        self.units = [n * plan.work for n, plan in zip(self.iterations, self.plans, strict=True)]
        #: Iterations the current scale is expected to run: its ceiling, or less once its loss
        #: curve shows when early stopping will end it (``projected_stop``).
        self.expected = self.iterations[0]
        self.started = time.perf_counter()
        self.done_iterations = 0
        self.done_units = 0.0
        #: (elapsed, units done) at the first report: the rate is measured from there.
        self.warmed: tuple[float, float] | None = None
        self.generator = torch.Generator().manual_seed(
            settings.seed if settings.seed is not None else torch.seed())
        self.content_luma = images.luminance(self.content)
        if settings.preserve_colors:
            # Luminance-only transfer: optimise a grey image against grey styles.
            self.content_input = self.content_luma.expand(-1, 3, -1, -1)
            self.styles = [
                images.match_luminance(images.luminance(s), self.content_luma).expand(-1, 3, -1, -1)
                for s in self.styles
            ]
        else:
            self.content_input = self.content
        if settings.color_match:
            self.styles = [images.match_color(s, self.content_input) for s in self.styles]
        # The targets depend on the content only through these two options.
        self.salt = b""
        if settings.preserve_colors or settings.color_match:
            self.salt = hashlib.sha256(self.content.cpu().numpy().tobytes()).digest()

    def execute(self) -> np.ndarray:
        # Keeping freed blocks makes CPU iterations faster and the peak larger: only where
        # the plan leaves room for it in the budget.
        spare = max(plan.peak for plan in self.plans) * allocator.FRAGMENTATION <= self.budget
        image: torch.Tensor | None = None
        with allocator.large_blocks_kept(self.device.type == "cpu" and spare):
            for index, size in enumerate(self.sizes):
                image = self._scale(index, size, image)
        assert image is not None
        result = images.resize(image, (self.height, self.width))
        return images.to_numpy(self._colour(result, self.content))

    def _scale(self, index: int, size: tuple[int, int], previous: torch.Tensor | None
               ) -> torch.Tensor:
        settings = self.settings
        network = Network(self.engine.model, settings.pooling, self.dtype, self.device)
        content = images.resize(self.content_input, size)
        tiles = _feature_tiles(content, settings.content_layers, self.dtype, self.budget)
        content_targets = {name: features.float() for name, features in
                           network.feature_maps(content, settings.content_layers, tiles).items()}
        style_size = fit(*size, max(MIN_SCALE_SIDE, round(max(size) * settings.style_scale)))
        styles = [images.resize(s, fit(*s.shape[-2:], max(style_size))) for s in self.styles]
        style_targets = self.engine.style_targets(styles, self.blend, settings, self.dtype,
                                                  self.salt, self.budget)
        if previous is not None:
            start = _upsample(previous, content)
        elif settings.init == "noise":
            start = torch.rand((1, 3, *size), generator=self.generator).to(self.device)
        elif settings.init == "image":
            start = self._vary(images.resize(images.to_tensor(self.init, self.device), size))
        else:
            start = self._vary(content)
        return self._optimise(index, start, content_targets, style_targets)

    def _vary(self, start: torch.Tensor) -> torch.Tensor:
        """The first scale's start image plus ``SEED_VARIATION`` of seeded noise: the same
        seed gives the same image, another seed (or none: a random one) a variation."""
        noise = torch.rand(start.shape, generator=self.generator).to(start.device) - 0.5
        return (start + SEED_VARIATION * noise).clamp(0, 1)

    def _optimise(self, index: int, start: torch.Tensor, content_targets: dict,
                  style_targets: dict) -> torch.Tensor:
        plan = self.plans[index]
        network = Network(self.engine.model, self.settings.pooling, self.dtype, self.device)
        losses: dict[str, float] = {}

        def on_tile(done: int, passes: int) -> None:
            self._check_cancel()
            if done < passes:  # the last pass ends the iteration, which reports itself
                self._report(index, None, losses, done, passes)

        objective = Objective(network, self.settings, content_targets, style_targets,
                              plan.tiles, on_tile)
        # The optimised tensor stays contiguous: L-BFGS flattens its gradient with a view.
        image = start.detach().clone().contiguous().requires_grad_(True)
        optimizer = _optimizer(plan, self.settings, image)

        def closure() -> torch.Tensor:
            losses.update(objective(image))
            return torch.tensor(losses["total"])

        per_iteration = self.units[index] / self.iterations[index]
        history: list[float] = []
        self.expected = self.iterations[index]
        for step in range(1, self.iterations[index] + 1):
            self._check_cancel()
            # Reduced precision can overflow; keep the last good image to restart in fp32.
            last_good = image.detach().clone() if self.dtype != torch.float32 else None
            if isinstance(optimizer, torch.optim.LBFGS) and not optimizer.state:
                _first_lbfgs_step(optimizer, image, closure)
            else:
                optimizer.step(closure)
            if not math.isfinite(losses["total"]) or not torch.isfinite(image).all():
                image, optimizer, objective.network = self._recover(last_good, plan)
                continue
            if isinstance(optimizer, torch.optim.Adam):
                with torch.no_grad():
                    image.clamp_(0, 1)
            self.done_iterations += 1
            self.done_units += per_iteration
            history.append(losses["total"])
            flat = flattened(history, self.settings.tolerance)
            self.expected = projected_stop(history, self.settings.tolerance,
                                           self.iterations[index])
            if flat:
                self._end_scale(index, step)
            last = step == self.iterations[index] and index == len(self.sizes) - 1
            self._report(index, image, losses, 0, 0, last)
            if flat:
                break
        return image.detach().float().contiguous().clamp(0, 1)

    def _end_scale(self, index: int, step: int) -> None:
        """The scale stops after ``step`` iterations: the work it will not do leaves the
        totals, so the progress and the time estimate count only what is still to come."""
        self.units[index] *= step / self.iterations[index]
        self.iterations[index] = step

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled("the run was cancelled")

    def _recover(self, last_good: torch.Tensor | None, plan: memory.ScalePlan
                 ) -> tuple[torch.Tensor, torch.optim.Optimizer, Network]:
        """A step went non-finite: fall back to float32 and restart from the last good image.

        Reduced precision can overflow on extreme inputs; float32 does not, so a run never
        ends in NaN."""
        if last_good is None:
            raise SettingsError("learning_rate", "the optimisation diverged; lower it or "
                                "use optimizer 'lbfgs'")
        self.dtype = torch.float32
        image = last_good.requires_grad_(True)
        network = Network(self.engine.model, self.settings.pooling, self.dtype, self.device)
        return image, _optimizer(plan, self.settings, image), network

    def _report(self, index: int, image: torch.Tensor | None, losses: dict[str, float],
                tile: int, tiles: int, last: bool = False) -> None:
        if self.callback is None:
            return
        done = self.done_units + (self.units[index] / self.iterations[index] * tile / tiles
                                  if tiles else 0.0)
        elapsed = time.perf_counter() - self.started
        eta = self._eta(elapsed, done, index)
        every = self.settings.preview_every
        preview = None
        if image is not None and (last or (every and self.done_iterations % every == 0)):
            preview = self._preview(image, PREVIEW_SIDE)
        self.callback(Progress(
            iteration=self.done_iterations, total=sum(self.iterations), scale=index + 1,
            scales=len(self.sizes), losses=dict(losses), elapsed=elapsed, eta=eta,
            preview=preview, tile=tile, tiles=tiles,
            render=None if image is None else lambda side: self._preview(image, side),
            plan=self.plans[index].describe(*self.sizes[index]),
            work_done=done, work_total=sum(self.units),
        ))

    def _eta(self, elapsed: float, done: float, index: int) -> float | None:
        """Seconds left at the rate measured since the first report; None until then.

        The work left counts the current scale at the iterations it is expected to run
        (with early stopping, often far fewer than its ceiling: 57 of 100 at balanced's
        finest scale on the cat) and the scales still to come at their ceilings."""
        total = sum(self.units) - self.units[index] * (1 - self.expected / self.iterations[index])
        if done >= total:
            return 0.0
        if self.warmed is None:
            self.warmed = (elapsed, done)
            return None
        since, base = self.warmed
        return (elapsed - since) * (total - done) / (done - base) if done > base else None

    def _preview(self, image: torch.Tensor, side: int) -> Image.Image:
        """The current image, longest side at most ``side``: resized first, so a preview of
        a 16-megapixel scale costs what its own size costs."""
        size = fit(*image.shape[-2:], min(side, max(image.shape[-2:])))
        current = images.resize(image.detach().float(), size).clamp(0, 1)
        if self.settings.preserve_colors:
            current = self._colour(current, images.resize(self.content, size))
        rgb = images.to_numpy(current)
        if self.alpha is not None:
            rgb = np.concatenate([rgb, self._preview_alpha(size)[..., None]], axis=2)
        return images.from_array(rgb)

    def _preview_alpha(self, size: tuple[int, int]) -> np.ndarray:
        """The content's alpha at ``size``, kept for the next preview of the same size."""
        if self._alpha_cache is None or self._alpha_cache[0] != size:
            alpha = Image.fromarray(self.alpha.astype(np.float32), "F").resize(
                (size[1], size[0]), Image.Resampling.BILINEAR)
            self._alpha_cache = (size, np.asarray(alpha))
        return self._alpha_cache[1]

    def _colour(self, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """With ``preserve_colors``, put the content's colours back under the new luma."""
        if not self.settings.preserve_colors:
            return image
        return images.replace_luminance(content, images.luminance(image))


def plan_run(height: int, width: int, settings: Settings,
             style_sizes: Sequence[tuple[int, int]], budget: int, dtype: torch.dtype
             ) -> list[memory.ScalePlan]:
    """Each scale's :class:`~nst_engine.memory.ScalePlan`, or ``BudgetError``.

    Beside the content's buffers, a scale holds the style images, as given and resized to
    the scale's style size."""
    plans = []
    for size in settings.scale_sizes(height, width):
        side = max(MIN_SCALE_SIDE, round(max(size) * settings.style_scale))
        styles = sum(h * w + math.prod(fit(h, w, side)) for h, w in style_sizes)
        plans.append(memory.plan_scale(
            *size, layers=settings.layers, content_layers=settings.content_layers,
            optimizer=settings.optimizer, dtype_bytes=_bytes(dtype), budget=budget,
            content_pixels=height * width, extra=styles * memory.IMAGE))
    return plans


def flattened(losses: Sequence[float], tolerance: float) -> bool:
    """Whether a scale's loss curve has flattened: it fell by less than ``tolerance`` (a
    fraction) over the last ``PLATEAU_WINDOW`` iterations. Never with a tolerance of 0."""
    if tolerance <= 0 or len(losses) <= PLATEAU_WINDOW:
        return False
    before = losses[-1 - PLATEAU_WINDOW]
    return before - losses[-1] <= tolerance * abs(before)


def projected_stop(losses: Sequence[float], tolerance: float, ceiling: int) -> int:
    """The iteration at which :func:`flattened` is expected to end a scale, from its loss
    curve so far; ``ceiling`` with no tolerance, too short a curve, or no sign of an end.

    The loss's fall over each window of ``PLATEAU_WINDOW`` iterations shrinks roughly as a
    power of the iteration count (on balanced's finest scale of the cat: 6.9%, 4.0%, 2.5%,
    1.7% at iterations 30, 40, 50, 60). The power is fitted to the last two windows, and the
    curve followed until its fall is within the tolerance: at iteration 40 that projects 58
    for a tolerance of 2%, which the curve crossed between 50 and 60."""
    window, count = PLATEAU_WINDOW, len(losses)
    if tolerance <= 0 or count <= window:
        return ceiling

    def fall(end: int) -> float:
        before = losses[end - 1 - window]
        return (before - losses[end - 1]) / abs(before) if before else 0.0

    now = fall(count)
    if now <= tolerance:
        return count
    # The first window holds the scale's first large steps, which follow no power: two
    # windows after it are needed.
    if count <= 3 * window:
        return ceiling
    earlier = fall(count - window)
    if not 0 < now < earlier:
        return ceiling
    power = math.log(earlier / now) / math.log(count / (count - window))
    # count * (now / tolerance) ** (1 / power), in logarithms: a curve that barely bends
    # projects its end too far off for a float (a race at style weight 100 overflowed).
    log_stop = math.log(count) + math.log(now / tolerance) / power
    if log_stop >= math.log(ceiling):
        return ceiling
    return max(count + 1, math.ceil(math.exp(log_stop)))


def _optimizer(plan: memory.ScalePlan, settings: Settings, image: torch.Tensor
               ) -> torch.optim.Optimizer:
    if plan.optimizer == "adam":
        return torch.optim.Adam([image], lr=settings.learning_rate)
    # One function evaluation per step, so an iteration is one forward and backward pass.
    return torch.optim.LBFGS([image], lr=1, max_iter=1, history_size=plan.history,
                             tolerance_grad=0, tolerance_change=0)


def _first_lbfgs_step(optimizer: torch.optim.LBFGS, image: torch.Tensor,
                      closure: Callable[[], torch.Tensor]) -> None:
    """A fresh L-BFGS's first step, moving the most-changed pixel by ``FIRST_STEP``.

    With no curvature pairs yet, torch's L-BFGS steps along the gradient by
    ``lr * min(1, 1 / |g|_1)``: for our relative losses |g|_1 is large, the step moves pixels
    by millionths, and the first iteration of every scale was wasted (total loss 8.4446 to
    8.4375 at draft's 192 px scale). Its learning rate is read before the closure runs, so
    the gradient is evaluated here first (the step's one evaluation: ``step`` gets it back
    from a closure that does not evaluate again), and the first step's learning rate set
    from it. Later steps take L-BFGS's own length (lr 1), sized by the pair this step
    makes."""
    loss = closure()
    grad = image.grad
    assert grad is not None
    largest = float(grad.abs().max())
    if largest > 0 and math.isfinite(largest):
        # torch's first step is lr * min(1, 1/|g|_1) * g; solve for lr.
        l1 = float(grad.abs().sum())
        optimizer.param_groups[0]["lr"] = FIRST_STEP / largest * max(1.0, l1)
    optimizer.step(lambda: loss)
    optimizer.param_groups[0]["lr"] = 1


def _upsample(previous: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The previous scale's result at ``content``'s size, with the detail of the content
    that the coarser scale could not hold.

    Upsampled alone it is blurred: at draft's 384 px scale its content distance was 0.98
    after 5 iterations and 0.57 only after 40, most of that scale's iterations spent
    sharpening edges back. The content's own fine detail (the content less its round trip
    through the coarser size) is added instead, so the finer scale starts sharp and spends
    its iterations on the style's finer strokes."""
    coarse = images.resize(content, tuple(previous.shape[-2:]))
    detail = content - images.resize(coarse, tuple(content.shape[-2:]))
    return (images.resize(previous, tuple(content.shape[-2:])) + detail).clamp(0, 1)


def _feature_tiles(image: torch.Tensor, layers: tuple[str, ...], dtype: torch.dtype,
                   budget: int) -> list[tiling.Tile]:
    """Tiles for a forward pass without a graph (the targets), within what the budget
    leaves beside the image-sized buffers."""
    height, width = image.shape[-2:]
    spare = max(budget - memory.fixed_bytes(height * width, (), height * width), 0)
    per_pixel = memory.activation_bytes(layers, _bytes(dtype), graph=False)
    return tiling.plan(height, width, layers,
                       max(int(spare // per_pixel), tiling.smallest_crop(height, width, layers)))


def _bytes(dtype: torch.dtype) -> int:
    return torch.finfo(dtype).bits // 8


def _blend_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise SettingsError("style_blend_weights", f"{len(weights)} weights for {count} styles")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise SettingsError("style_blend_weights", "must be non-negative and not all zero")
    # Scaled by the largest first: the sum of very large finite weights can be infinite.
    scaled = [w / max(weights) for w in weights]
    return [w / sum(scaled) for w in scaled]


def _like(source: Image.Image | np.ndarray, result: np.ndarray) -> Image.Image | np.ndarray:
    """The RGB result in the form of ``source``, with ``source``'s own alpha channel."""
    if isinstance(source, np.ndarray):
        if source.ndim == 3 and source.shape[2] == 4:
            out = np.empty(source.shape, dtype=source.dtype)
            out[..., :3] = _to_dtype(result, source.dtype)
            out[..., 3] = source[..., 3]
            return out
        return _to_dtype(result, source.dtype)
    rgb = images.from_array(result)
    if "A" in source.getbands() or "transparency" in source.info:
        rgb.putalpha(source.convert("RGBA").getchannel("A"))
    return rgb


def _to_dtype(rgb: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(np.rint(rgb * 65535), 0, 65535).astype(np.uint16)
    return rgb.astype(dtype)
