"""The ``nst`` command: stylise images from a terminal, with a progress bar and ETA."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from . import __version__
from .errors import NSTError, SettingsError
from .layers import LAYER_NAMES
from .settings import PRESETS, Settings
from .transfer import Progress, StyleTransfer


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "layers":
        print("\n".join(LAYER_NAMES))
        return 0
    if args.command == "presets":
        for name, values in PRESETS.items():
            print(f"{name}: {Settings.from_preset(name).to_dict() | values}")
        return 0
    try:
        _stylize(args)
    except NSTError as error:
        print(f"nst: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nnst: cancelled", file=sys.stderr)
        return 130
    return 0


def _stylize(args: argparse.Namespace) -> None:
    settings = _settings(args)
    output = Path(args.output)
    if output.suffix.lower() not in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}:
        raise SettingsError("output", f"'{output}' needs an image extension such as .png")
    engine = StyleTransfer(args.weights, args.device, download=args.download)
    info = engine.describe()
    if not args.quiet:
        print(f"nst: {info['device']}, {info['weights']}", file=sys.stderr)
    bar = None if args.quiet else ProgressBar()
    save_dir = Path(args.save_every[1]) if args.save_every else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)

    def on_progress(progress: Progress) -> None:
        if bar:
            bar.update(progress)
        if save_dir and progress.preview is not None:
            progress.preview.save(save_dir / f"iteration_{progress.iteration:05d}.png")

    result = engine.stylize(
        args.content, args.styles, settings, style_blend_weights=args.style_blend,
        callback=on_progress,
    )
    if bar:
        bar.close()
    if output.suffix.lower() in {".jpg", ".jpeg"} and result.mode == "RGBA":
        result = result.convert("RGB")  # JPEG has no alpha
    output.parent.mkdir(parents=True, exist_ok=True)
    result.save(output)
    if not args.quiet:
        print(f"nst: wrote {output}", file=sys.stderr)


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the preset plus every option the user gave explicitly."""
    overrides = {
        key: value
        for key, value in {
            "size": args.size, "scales": args.scales, "iterations": args.iterations,
            "initial_iterations": args.initial_iterations, "tolerance": args.tolerance,
            "full_iterations": args.full_iterations, "memory_budget": args.memory_budget,
            "content_weight": args.content_weight, "style_weight": args.style_weight,
            "tv_weight": args.tv_weight, "optimizer": args.optimizer,
            "learning_rate": args.learning_rate, "pooling": args.pooling,
            "style_scale": args.style_scale, "seed": args.seed, "precision": args.precision,
            "content_layers": args.content_layers,
            "style_layers": _style_layers(args.style_layers) if args.style_layers else None,
        }.items()
        if value is not None
    }
    if args.init not in (None, "content", "noise"):
        overrides |= {"init": "image", "init_image": args.init}
    elif args.init:
        overrides["init"] = args.init
    if args.full_resolution:
        overrides["full_resolution"] = True
    if args.preserve_colors:
        overrides["preserve_colors"] = True
    if args.color_match:
        overrides["color_match"] = True
    if args.save_every:
        overrides["preview_every"] = _positive(args.save_every[0], "--save-every")
    return Settings.from_dict({"preset": args.preset, **overrides})


def _style_layers(specs: list[str]) -> dict[str, float]:
    """``conv1_1`` or ``conv1_1:0.5`` items into a layer -> weight dictionary."""
    layers = {}
    for spec in specs:
        name, _, weight = spec.partition(":")
        try:
            layers[name] = float(weight) if weight else 1.0
        except ValueError:
            raise SettingsError("style_layers", f"bad weight in '{spec}'") from None
    return layers


def _positive(text: str, option: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(option.lstrip("-").replace("-", "_"), "must be a positive integer")
    return int(text)


class ProgressBar:
    """A one-line bar with losses, elapsed time and ETA; plain lines when not a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_print = 0.0
        self.plan = ""

    def update(self, p: Progress) -> None:
        if p.plan != self.plan:  # a new scale: say how it runs (tiles, optimiser, memory)
            self.plan = p.plan
            self.stream.write(("\n" if self.tty and self.last_print else "")
                              + f"nst: scale {p.scale}/{p.scales}, {p.plan}\n")
            self.last_print = time.monotonic()
        done = (p.iteration + (p.tile / p.tiles if p.tiles else 0)) / p.total
        filled = round(self.WIDTH * done)
        eta = _clock(p.eta) if p.eta is not None else "--:--"
        tile = f" tile {p.tile}/{p.tiles}" if p.tiles else ""
        loss = f" loss {p.losses['total']:.4g}" if p.losses else ""
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {p.iteration}/{p.total}{tile} "
                f"scale {p.scale}/{p.scales}{loss} "
                f"{_clock(p.elapsed)} elapsed, ETA {eta}")
        if self.tty:
            self.stream.write("\r" + line)
        elif time.monotonic() - self.last_print > 5 or p.iteration == p.total:
            self.stream.write(line + "\n")
            self.last_print = time.monotonic()
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a default only where the option has one; the rest come from the preset."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nst", description="Neural style transfer (Gatys et al.) on VGG-19.")
    parser.add_argument("--version", action="version", version=f"nst {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("layers", help="list the VGG-19 layer names")
    commands.add_parser("presets", help="show the presets' settings")
    s = commands.add_parser(
        "stylize", help="stylise an image", formatter_class=_HelpFormatter,
        description="Stylise CONTENT with one or more STYLE images. Options left out take the "
                    "preset's values (see `nst presets`).")
    s.add_argument("content", help="content image file")
    s.add_argument("styles", nargs="+", metavar="style", help="style image file(s)")
    s.add_argument("-o", "--output", required=True, help="output image file (.png, .jpg, ...)")
    s.add_argument("--preset", default="balanced", choices=list(PRESETS),
                   help="starting point for every setting below")
    s.add_argument("--size", type=int,
                   help="longest side processed (larger inputs upsampled, unless "
                        "--full-resolution)")
    s.add_argument("--scales", type=int, help="number of scales, coarse to fine")
    s.add_argument("--iterations", type=int, help="iterations at each finer scale")
    s.add_argument("--initial-iterations", type=int, help="iterations at the coarsest scale")
    s.add_argument("--tolerance", type=float,
                   help="end a scale once its loss fell by less than this fraction over 10 "
                        "iterations (0: run every iteration)")
    s.add_argument("--full-resolution", action="store_true",
                   help="go on past --size to the content's own size (no upsampling)")
    s.add_argument("--full-iterations", type=int,
                   help="iterations at each scale above --size, with --full-resolution")
    s.add_argument("--memory-budget", metavar="BYTES",
                   help="memory the run may use, e.g. 6GB (default: half the free RAM, or "
                        "most of the free GPU memory); larger scales run in tiles")
    s.add_argument("--content-weight", type=float, help="alpha: how much content to keep")
    s.add_argument("--style-weight", type=float, help="beta: style strength")
    s.add_argument("--tv-weight", type=float, help="total-variation (smoothness) weight")
    s.add_argument("--style-blend", type=float, nargs="+", metavar="W",
                   help="blend weight of each style image")
    s.add_argument("--content-layers", nargs="+", metavar="LAYER",
                   help="layers whose features keep the content (see `nst layers`)")
    s.add_argument("--style-layers", nargs="+", metavar="LAYER[:W]",
                   help="style layers with optional weights, e.g. relu1_1:1 relu2_1:0.75")
    s.add_argument("--optimizer", choices=["lbfgs", "adam"], help="L-BFGS or Adam")
    s.add_argument("--learning-rate", type=float, help="Adam's step size")
    s.add_argument("--init", help="content, noise, or an image file to start from")
    s.add_argument("--preserve-colors", action="store_true", help="keep the content's colours")
    s.add_argument("--color-match", action="store_true",
                   help="match the style's colours to the content's first")
    s.add_argument("--pooling", choices=["max", "avg"], help="VGG pooling: max or average")
    s.add_argument("--style-scale", type=float, help="style image size relative to the content")
    s.add_argument("--seed", type=int,
                   help="the same seed repeats a result; another (or none) gives a variation")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="convolution precision; auto picks the fastest safe one")
    s.add_argument("--weights", default="default",
                   help="default (original VGG-19, offline), torchvision, or a file path")
    s.add_argument("--download", action="store_true",
                   help="allow downloading torchvision's weights when not cached")
    s.add_argument("--save-every", nargs=2, metavar=("N", "DIR"),
                   help="save an intermediate image every N iterations into DIR")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


if __name__ == "__main__":
    sys.exit(main())
