"""Full resolution: what tiling costs, what it holds in memory, and what it buys.

    python bench/full_resolution.py cost       # s/iteration and peak RSS, tiled and untiled
    python bench/full_resolution.py memory     # one whole 4096 px full-resolution run's peak
    python bench/full_resolution.py quality    # 2048 px: full resolution against "high"

1. cost: one evaluation of the loss and its gradient (an iteration) at 512, 1024 and 2048 px
   (4096 with --sizes), untiled while it fits in RAM and tiled with cores of each --tile size
   (those smaller than the image and over a quarter of its side), each in a fresh process
   so its peak RSS is its own. Tiled and untiled per-pixel times are compared at the sizes
   where both fit.
2. memory: ``nst stylize --preset full`` on a 4096x4096 content under a memory budget, one
   iteration per scale, in a fresh process: its peak RSS against the budget, and the time of
   a finest-scale iteration.
3. quality: one seeded ``full`` run at 2048 px under a budget that tiles the finest scale. The
   same run after its 1024 px scale, upsampled, is exactly what the ``high`` schedule returns,
   so both come from one run. The content is a generated city under an empty sky (tiles that
   differ a lot, bench/skyline.py) and the style a generated painting as large as the canvas
   (bench/painting.py), so that there is fine brush-work to transfer. Fine-scale style
   distance (SWD at relu1_1 and relu2_1, measured at 2048 px by bench/quality.py) compares
   them. The image gradient across each tile border is compared with the gradient across
   parallel lines a few pixels away, in both images (the upsampled one, never tiled at this
   size, is the control): a seam would raise it in the full-resolution one only. A 100% crop
   of both, across a tile border, is saved for the README.

Each command writes bench/results/full-resolution-<command>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchmark import _machine  # noqa: E402
from painting import painting  # noqa: E402
from quality import Evaluator  # noqa: E402
from skyline import skyline  # noqa: E402

from nst_engine import Settings, StyleTransfer, memory, tiling  # noqa: E402
from nst_engine.objective import Network, Objective  # noqa: E402


def main() -> None:
    args = _parser().parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "cost-child":
        print(json.dumps(_cost_child(args.size, args.tile[0])))
        return
    result = {"cost": _cost, "memory": _memory, "quality": _quality}[args.command](args)
    (args.out / f"full-resolution-{args.command}.json").write_text(json.dumps(result, indent=2))


# --- cost ----------------------------------------------------------------------------------

def _cost(args: argparse.Namespace) -> dict:
    rows = []
    settings = Settings.from_preset("full")
    for size in args.sizes:
        for tile in (0, *(t for t in args.tile if size / 4 < t < size)):
            if tile == 0 and not _untiled_fits(size, settings):
                rows.append({"size": size, "tiles": 1, "fits": False})
                continue
            out = subprocess.run([sys.executable, __file__, "cost-child", "--size", str(size),
                                  "--tile", str(tile)], check=True, capture_output=True,
                                 text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    lines = ["| size | tiles (core) | s/iteration | CPU µs/pixel | peak RSS (GB) | tiled/untiled, "
             "per pixel of CPU time |", "|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if not row["fits"]:
            lines.append(f"| {row['size']} | untiled | does not fit in RAM | | | |")
            continue
        untiled = next((r for r in rows if r["size"] == row["size"] and r["tiles"] == 1
                        and r["fits"]), None)
        ratio = (f"{row['cpu_us_per_pixel'] / untiled['cpu_us_per_pixel']:.2f}"
                 if untiled and row["tiles"] > 1 else "")
        tiles = f"{row['tiles']} ({row['core']} px)" if row["tiles"] > 1 else "untiled"
        lines.append(f"| {row['size']} | {tiles} | {row['seconds']:.2f} | "
                     f"{row['cpu_us_per_pixel']:.2f} | {row['peak_rss_gb']:.2f} | {ratio} |")
    print("\n".join(lines))
    return {"machine": _machine("cpu"), "tiles": args.tile, "rows": rows, "table": lines}


def _untiled_fits(size: int, settings: Settings) -> bool:
    per_pixel = memory.activation_bytes(settings.layers, 4, graph=True)
    return size * size * per_pixel + memory.BASELINE < 0.8 * _ram()


def _cost_child(size: int, tile: int) -> dict:
    """One iteration's objective (forward, backward, every tile pass) at ``size`` px."""
    torch.manual_seed(0)
    engine = StyleTransfer(device="cpu")
    settings = Settings.from_preset("full")
    network = Network(engine.model, "max", torch.float32, engine.device)
    image = torch.rand(1, 3, size, size)
    spare = max(memory.activation_bytes(settings.layers, 4, graph=False) * 512**2, 2**30)
    feature_tiles = tiling.plan(size, size, settings.layers, int(spare // 1024))
    content = network.feature_maps(image, settings.content_layers, feature_tiles)
    style = network.gram_matrices(image.flip(-1), tuple(settings.style_layers), feature_tiles)
    crop = (tile + 2 * tiling.halo(settings.layers)) ** 2 if tile else size * size
    tiles = tiling.plan(size, size, settings.layers, crop)
    # Build the kernels on a small image first, so the timed evaluation is a steady one.
    warm = torch.rand(1, 3, 128, 128, requires_grad=True)
    small = tiling.whole(128, 128)
    Objective(network, settings, network.feature_maps(warm, settings.content_layers, small),
              style, small)(warm)
    x = image.clone().requires_grad_(True)
    objective = Objective(network, settings, content, style, tiles)
    start, cpu = time.perf_counter(), time.process_time()
    objective(x)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # CPU time counts the work even when other processes share the cores (the children run
    # with OMP_WAIT_POLICY=PASSIVE, so waiting threads do not spin it up).
    return {"size": size, "tiles": len(tiles), "core": tile, "fits": True, "seconds": seconds,
            "cpu_seconds": cpu, "us_per_pixel": seconds / size**2 * 1e6,
            "cpu_us_per_pixel": cpu / size**2 * 1e6, "peak_rss_gb": peak / 2**30}


# --- memory --------------------------------------------------------------------------------

def _memory(args: argparse.Namespace) -> dict:
    size = args.size or 4096
    work, content = _workspace(args, "memory", size)
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "nst_engine.cli", "stylize",
               str(content), str(args.style), "-o", str(work / "out.png"), "--preset", "full",
               "--initial-iterations", "1", "--iterations", "1", "--full-iterations", "1",
               "--memory-budget", args.budget, "--seed", "0", "--device", "cpu"]
    start = time.time()
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.time() - start
    log = run.stderr.replace("\r", "\n")
    peak_kb = int(next(line.split(":")[1] for line in log.splitlines()
                       if "Maximum resident set size" in line))
    plans = [line.split(", ", 1)[1] for line in log.splitlines() if line.startswith("nst: scale")]
    result = {"machine": _machine("cpu"), "size": size, "budget": args.budget,
              "budget_bytes": memory.parse_bytes(args.budget), "peak_rss_gb": peak_kb / 2**20,
              "wall_s": wall, "plans": plans}
    print(json.dumps(result, indent=2))
    return result


# --- quality -------------------------------------------------------------------------------

def _quality(args: argparse.Namespace) -> dict:
    size = args.size or 2048
    work = args.out / "full-resolution-quality"
    work.mkdir(parents=True, exist_ok=True)
    content_path, style_path = work / f"skyline-{size}.png", work / f"painting-{size}.png"
    skyline(size).save(content_path)
    painting(size).save(style_path)
    content = np.asarray(Image.open(content_path).convert("RGB"), dtype=np.float32) / 255
    settings = Settings.from_preset(
        "full", initial_iterations=args.initial_iterations, iterations=args.iterations,
        full_iterations=args.full_iterations, memory_budget=memory.parse_bytes(args.budget),
        seed=0, preview_every=1)
    sizes = settings.scale_sizes(*content.shape[:2])
    engine = StyleTransfer(device="cpu")
    style = np.asarray(Image.open(style_path).convert("RGB"), dtype=np.float32) / 255
    plans = engine.plan(*content.shape[:2], settings, [style.shape[:2]])
    coarse_end = sum(settings.scale_iterations(*content.shape[:2])[:-1])
    snapshots: dict[str, Image.Image] = {}
    times: dict[str, float] = {}
    start = time.perf_counter()

    def on_progress(progress) -> None:
        if progress.iteration == coarse_end and progress.preview is not None:
            snapshots["high"] = progress.preview  # the 1024 px scale's final image
            times["high"] = time.perf_counter() - start

    full = engine.stylize(content, [style], settings, callback=on_progress)
    times["full"] = time.perf_counter() - start
    high = snapshots["high"].resize((size, size), Image.Resampling.BICUBIC)
    full_image = Image.fromarray(np.clip(np.rint(full * 255), 0, 255).astype(np.uint8))
    high.save(work / "high.png")
    full_image.save(work / "full.png")
    fine = Evaluator(content_path, style_path, size, style_layers=("relu1_1", "relu2_1"))
    overall = Evaluator(content_path, style_path, size)
    scores = {name: {"fine": fine.score(image).as_dict(), "all": overall.score(image).as_dict()}
              for name, image in (("high", high), ("full", full_image))}
    # The high result never ran tiled at this size: the same lines there are the control.
    seams = {name: _seam_ratio(image, plans[-1].tiles)
             for name, image in (("full", full_image), ("high", high))}
    # Across the first tile border, where the city meets the sky (the image's centre untiled).
    border = (seams["full"]["border_columns"] or [size // 2])[0]
    _crop_pair(high, full_image, work / "crop.png", (border, size * 3 // 4))
    result = {"machine": _machine("cpu"), "size": size, "sizes": sizes, "budget": args.budget,
              "finest_plan": plans[-1].describe(*sizes[-1]), "times_s": times,
              "scores": scores, "seams": seams}
    print(json.dumps(result, indent=2))
    return result


def _seam_ratio(image: Image.Image, tiles: list[tiling.Tile],
                offsets: tuple[int, ...] = (8, 16, 24, 32)) -> dict:
    """Mean image-gradient magnitude across the tile borders, against the same across lines
    parallel to them ``offsets`` pixels away on either side: about 1 when there is no seam,
    whatever the content does there. ``percentile``: where that ratio ranks among the same
    ratio for every other line of the image (a seam would rank at the top)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255
    cols = sorted({t.cols.start for t in tiles} - {0})
    rows = sorted({t.rows.start for t in tiles} - {0})
    # Mean difference between neighbours, per line: index i is between pixels i and i + 1.
    lines = {1: (np.abs(np.diff(grey, axis=1)).mean(axis=0), cols),
             0: (np.abs(np.diff(grey, axis=0)).mean(axis=1), rows)}
    shifts = [sign * offset for offset in offsets for sign in (-1, 1)]
    reach = max(offsets)

    def ratio(means: np.ndarray, line: int) -> float:
        return float(means[line] / np.mean([means[line + shift] for shift in shifts]))

    at_borders = [ratio(means, start - 1) for means, starts in lines.values() for start in starts]
    everywhere = [ratio(means, line) for means, _ in lines.values()
                  for line in range(reach, len(means) - reach)]
    if not at_borders:
        return {"border_columns": cols, "border_rows": rows, "ratio": None}
    border = float(np.mean(at_borders))
    return {"border_columns": cols, "border_rows": rows, "offsets": list(offsets),
            "ratio": border,
            "percentile": float(np.mean(np.array(everywhere) < border) * 100)}


def _crop_pair(high: Image.Image, full: Image.Image, path: Path, centre: tuple[int, int],
               side: int = 384) -> None:
    """The same 100% crop of both around ``centre`` (x, y), side by side."""
    left = min(max(0, centre[0] - side // 2), high.width - side)
    top = min(max(0, centre[1] - side // 2), high.height - side)
    box = (left, top, left + side, top + side)
    pair = Image.new("RGB", (2 * side + 8, side), "white")
    pair.paste(high.crop(box), (0, 0))
    pair.paste(full.crop(box), (side + 8, 0))
    pair.save(path)


# --- helpers -------------------------------------------------------------------------------

def _workspace(args: argparse.Namespace, command: str, size: int) -> tuple[Path, Path]:
    """The command's folder, holding the content upscaled to ``size`` (our pictures are
    512 px; the point here is the number of pixels, not their detail)."""
    work = args.out / f"full-resolution-{command}"
    work.mkdir(parents=True, exist_ok=True)
    content = work / f"content-{size}.png"
    with Image.open(args.content) as image:
        image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS).save(content)
    return work, content


def _ram() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        return int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1]) * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["cost", "memory", "quality", "cost-child"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--tile", type=int, nargs="+", default=[256, 512, 1024, 1400],
                        help="tile core sizes for 'cost' (the child takes one)")
    parser.add_argument("--size", type=int, help="content size for 'memory' and 'quality'")
    parser.add_argument("--budget", default="6GB", help="memory budget for 'memory', 'quality'")
    parser.add_argument("--initial-iterations", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--full-iterations", type=int, default=10)
    parser.add_argument("--content", type=Path, default=BENCH / "images" / "astronaut.png")
    parser.add_argument("--style", type=Path, default=BENCH / "images" / "painting.png")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    return parser


if __name__ == "__main__":
    main()
