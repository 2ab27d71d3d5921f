"""Speed and time-to-quality benchmark, with the peer (pastiche) run side by side.

    python bench/benchmark.py                 # 20-35 minutes on a 2-core CPU, 10-17 of
                                              # them pastiche's 300 steps at 512 px
    python bench/benchmark.py --compare-sizes 256 --pastiche-steps 100   # a quick look
    python bench/benchmark.py --compare-sizes 512 1024   # adds the 1024 px race (hours on a CPU)
    python bench/benchmark.py --skip-speed --compare-sizes 1024 --pastiche-steps 100 \
        --nst-style-weight 17 --nst-save-every 1   # 1024 px against 100 steps: 17 meets
                                  # pastiche's trade-off on all three pairs, barely (README)

1. Speed: seconds per iteration (one forward and backward pass through VGG-19 up to the
   deepest default layer, with the default losses) at each size, for the plain fp32 path
   (float32, NCHW) and for the engine's default path (its automatic precision,
   channels-last layout, and freed blocks kept for reuse: nst_engine/allocator.py); peak
   memory (RSS of a fresh process on CPU, peak allocated on GPU) and achieved GFLOP/s
   against the convolutions' FLOP count.
2. Time to quality: the pastiche CLI and the ``nst`` CLI stylise the same pair at the same
   size, each saving intermediate images; one evaluator (bench/quality.py) scores them all,
   and we report when each engine first reaches the other's final quality.

Writes results.json, results.md and quality-<size>.svg into --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from quality import Evaluator, Scores  # noqa: E402
from svgplot import line_plot  # noqa: E402

from nst_engine import Settings, StyleTransfer, allocator, tiling  # noqa: E402
from nst_engine.device import explain_precision, precision_name, resolve_precision  # noqa: E402
from nst_engine.layers import BLOCKS, CONV_NAMES, depth  # noqa: E402
from nst_engine.objective import Network, Objective  # noqa: E402


def main() -> None:
    args = _parser().parse_args()
    if args.command == "speed-child":
        print(json.dumps(_speed_child(args.size, args.path, args.device, args.iterations)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": _machine(args.device), "speed": [], "compare": []}
    if not args.skip_speed:
        for size in args.sizes:
            for path in ("fp32", "default"):
                row = _speed(size, path, args.device, args.iterations)
                print(f"speed {size}px {path}: {row['seconds_per_iteration']:.3f} s/it, "
                      f"{row['gflops']:.0f} GFLOP/s, {row['peak_memory_mb']:.0f} MB", flush=True)
                results["speed"].append(row)
    for size in args.compare_sizes:
        results["compare"].append(_compare(args, size))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(_markdown(results))
    print((args.out / "results.md").read_text())


# --- speed -------------------------------------------------------------------------------

def _speed(size: int, path: str, device: str, iterations: int) -> dict:
    """Each measurement in a fresh process, so its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, __file__, "speed-child", "--size", str(size), "--path", path,
         "--device", device, "--iterations", str(iterations)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _speed_child(size: int, path: str, device_name: str, iterations: int) -> dict:
    engine = StyleTransfer(device=device_name)
    device = engine.device
    settings = Settings()
    dtype = torch.float32 if path == "fp32" else resolve_precision(device, "auto")
    layers = settings.layers
    if path == "fp32":
        engine.model.to(memory_format=torch.contiguous_format)
    # The engine's own objective, untiled: one forward and one backward pass.
    network = Network(engine.model, settings.pooling, dtype, device,
                      channels_last=path != "fp32")
    image = torch.rand(1, 3, size, size, device=device)
    whole = tiling.whole(size, size)
    objective = Objective(network, settings,
                          network.feature_maps(image, settings.content_layers, whole),
                          network.gram_matrices(image, tuple(settings.style_layers), whole),
                          whole)
    x = torch.rand(1, 3, size, size, device=device, requires_grad=True)
    times = []
    # The default path keeps freed blocks for reuse, as a run does when its budget has room.
    with allocator.large_blocks_kept(path != "fp32" and device.type == "cpu"):
        for _ in range(iterations + 1):  # the first builds kernels and is not counted
            _sync(device)
            start = time.perf_counter()
            objective(x)
            _sync(device)
            times.append(time.perf_counter() - start)
    seconds = min(times[1:])
    if device.type == "cuda":
        memory = torch.cuda.max_memory_allocated() / 2**20
    else:
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    flops = _iteration_flops(size, size, layers)
    return {"size": size, "path": path, "precision": precision_name(dtype),
            "layout": "NCHW" if path == "fp32" else "channels-last",
            "seconds_per_iteration": seconds, "peak_memory_mb": memory,
            "gflop_per_iteration": flops / 1e9, "gflops": flops / seconds / 1e9}


def _iteration_flops(height: int, width: int, layers: tuple[str, ...]) -> float:
    """Convolution FLOPs of one forward pass to the deepest layer, times two for the
    backward pass (input gradients only: the weights are frozen)."""
    last = max(depth(n) for n in layers)
    flops, channels_in, names = 0.0, 3, iter(CONV_NAMES)
    for block, convs in enumerate(BLOCKS):
        h, w = -(-height // 2**block), -(-width // 2**block)
        for out in convs:
            if depth(next(names)) <= last:
                flops += 2 * channels_in * out * 9 * h * w
            channels_in = out
    return 2 * flops


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- time to quality ----------------------------------------------------------------------

def _compare(args: argparse.Namespace, size: int) -> dict:
    work = args.out / f"race-{size}"
    content = enlarged(args.content, size, work)
    evaluator = Evaluator(content, args.style, size)
    device = "cuda" if torch.cuda.is_available() and args.device in ("auto", "cuda") else "cpu"
    pastiche = _race(work / "pastiche", [
        sys.executable, "-m", "pastiche", "--device", device, "--size", str(size),
        "--num-steps", str(args.pastiche_steps), "--seed", "0", "--no-verbose",
        "--content", str(content), "--styles", str(args.style),
        "--workspace", str(work / "pastiche"), "--workspace-step", "10",
        "--output", str(work / "pastiche.png"),
    ], work / "pastiche.png", evaluator)
    settings = _race_settings(args, size)
    ours = _race(work / "nst", [
        sys.executable, "-m", "nst_engine.cli", "stylize", str(content), str(args.style),
        "-o", str(work / "nst.png"), "--preset", settings.preset, "--size", str(size),
        "--scales", str(settings.scales), "--initial-iterations",
        str(settings.initial_iterations), "--iterations", str(settings.iterations),
        "--style-weight", str(settings.style_weight), "--seed", "0", "--device", args.device,
        "-q", "--save-every", str(args.nst_save_every), str(work / "nst"),
    ], work / "nst.png", evaluator)
    peer_final, our_final = pastiche["final"], ours["final"]
    ours_to_peer = _first_time(ours["trace"], peer_final)
    peer_to_ours = _first_time(pastiche["trace"], our_final)
    row = {
        "size": size, "pastiche_steps": args.pastiche_steps,
        "nst_settings": {"preset": settings.preset, "scales": settings.scales,
                         "initial_iterations": settings.initial_iterations,
                         "iterations": settings.iterations,
                         "style_weight": settings.style_weight},
        "pastiche": {"wall_s": pastiche["wall"], "final": peer_final.as_dict()},
        "nst": {"wall_s": ours["wall"], "final": our_final.as_dict()},
        "nst_time_to_pastiche_quality_s": ours_to_peer,
        "pastiche_time_to_nst_quality_s": peer_to_ours,
        "ratio": ours_to_peer / pastiche["wall"] if ours_to_peer is not None else None,
    }
    (args.out / f"quality-{size}.svg").write_text(line_plot(
        f"Style distance against wall time, {size} px (lower is more stylised)",
        {"pastiche": [(t, s.style_swd) for t, s in pastiche["trace"]],
         "nst": [(t, s.style_swd) for t, s in ours["trace"]]},
        x_label="wall time (s)", y_label="style distance (SWD, relative)",
    ))
    print(f"race {size}px: pastiche {pastiche['wall']:.1f} s, nst {ours['wall']:.1f} s, "
          f"nst reached pastiche's final quality at {ours_to_peer} s", flush=True)
    return row


def enlarged(image: Path, side: int, folder: Path) -> Path:
    """``image``, or where its longest side is under ``side`` a copy enlarged to it
    (Lanczos) in ``folder``, made on first use.

    A race: pastiche enlarges a small content itself and works at the race's size; nst never
    works above the content's own size and upsamples its result. Without this, a 1024 px race on
    the 512 px astronaut timed nst's three scales at 128, 256 and 512 px against pastiche at
    1024 (58 s against 894 s for 100 steps), which is not the race it names."""
    with Image.open(image) as opened:
        if max(opened.size) >= side:
            return image
        copy = folder / f"{image.stem}-{side}.png"
        if not copy.exists():
            folder.mkdir(parents=True, exist_ok=True)
            scale = side / max(opened.size)
            size = (round(opened.width * scale), round(opened.height * scale))
            opened.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(copy)
    return copy


def _race_settings(args: argparse.Namespace, size: int) -> Settings:
    """nst's settings for the race: the preset, with a coarsest scale of 256 px (1 scale at
    256, 2 at 512, 3 at 1024) and the style weight that puts it at pastiche's trade-off.

    Our losses are relative (scale-free) and pastiche's are absolute, so equal numbers mean
    different things: pastiche's defaults weight style so heavily that its result keeps
    little of the content (evaluator content distance about 1.2), where the balanced preset
    (style weight 7) keeps much more. A race is only fair at the same trade-off, which the
    Pareto test in ``Scores.at_least_as_good_as`` then checks on both axes."""
    scales = max(1, round(math.log2(size / 256)) + 1)
    return Settings.from_preset(args.preset, size=size, scales=scales,
                                initial_iterations=args.nst_initial_iterations,
                                iterations=args.nst_iterations,
                                style_weight=args.nst_style_weight)


def _race(workspace: Path, command: list[str], output: Path, evaluator: Evaluator) -> dict:
    """Run one engine as a fresh process; score its intermediate images by their write time."""
    workspace.mkdir(parents=True, exist_ok=True)
    for old in workspace.glob("*.png"):
        old.unlink()
    start = time.time()
    subprocess.run(command, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = output.stat().st_mtime - start
    trace = [(path.stat().st_mtime - start, evaluator.score(path))
             for path in sorted(workspace.glob("*.png"), key=lambda p: p.stat().st_mtime)]
    final = evaluator.score(output)
    trace.append((wall, final))
    return {"wall": wall, "trace": trace, "final": final}


def _first_time(trace: list[tuple[float, Scores]], target: Scores) -> float | None:
    return next((t for t, scores in trace if scores.at_least_as_good_as(target)), None)


# --- report -------------------------------------------------------------------------------

def _machine(device: str) -> dict:
    engine_device = "cuda" if torch.cuda.is_available() and device in ("auto", "cuda") else "cpu"
    name = torch.cuda.get_device_name() if engine_device == "cuda" else _cpu_name()
    return {"device": engine_device, "name": name, "cores": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(),
            "precision": explain_precision(torch.device(engine_device)),
            "date": time.strftime("%Y-%m-%d")}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['name']} ({m['device']}, {m['cores']} cores), torch {m['torch']}, "
             f"{m['date']}.", f"The engine's default path runs in {m['precision']}.", ""]
    if results["speed"]:
        lines += ["| size | path | precision | s/iteration | GFLOP/s | peak memory (MB) |",
                  "|---:|---|---|---:|---:|---:|"]
        for r in results["speed"]:
            lines.append(f"| {r['size']} | {r['path']} | {r['precision']}, {r['layout']} | "
                         f"{r['seconds_per_iteration']:.3f} | {r['gflops']:.0f} | "
                         f"{r['peak_memory_mb']:.0f} |")
        lines.append("")
    for c in results["compare"]:
        p, n = c["pastiche"], c["nst"]
        reached = c["nst_time_to_pastiche_quality_s"]
        lines += [
            f"Time to quality at {c['size']} px (pastiche: {c['pastiche_steps']} L-BFGS steps; "
            f"nst: preset {c['nst_settings']['preset']}, {c['nst_settings']['scales']} scales, "
            f"style weight {c['nst_settings']['style_weight']:g}):",
            "",
            "| engine | wall time (s) | style SWD | style Gram | content | reaches the other's "
            "final quality at (s) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| pastiche | {p['wall_s']:.1f} | {p['final']['style_swd']:.3f} | "
            f"{p['final']['style_gram']:.3f} | {p['final']['content']:.3f} | "
            f"{_maybe(c['pastiche_time_to_nst_quality_s'])} |",
            f"| nst | {n['wall_s']:.1f} | {n['final']['style_swd']:.3f} | "
            f"{n['final']['style_gram']:.3f} | {n['final']['content']:.3f} | "
            f"{_maybe(reached)} |",
            "", _verdict(c), "",
        ]
    return "\n".join(lines)


def _verdict(comparison: dict) -> str:
    """The race's result in a sentence, also when there is no time to give."""
    if comparison["ratio"] is not None:
        return (f"nst reaches pastiche's final quality in {comparison['ratio']:.2f} of "
                "pastiche's wall time.")
    if comparison["pastiche_time_to_nst_quality_s"] is None:
        return ("Neither engine reaches the other's final quality: at this style weight they "
                "end at different trade-offs on this pair, so the race has no time to give.")
    return "nst never reaches pastiche's final quality; pastiche reaches nst's."


def _maybe(value: float | None, fmt: str = "{:.1f}") -> str:
    return "never" if value is None else fmt.format(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "speed-child"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--compare-sizes", type=int, nargs="*", default=[512])
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per size")
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--preset", default="balanced", help="nst's preset in the race")
    parser.add_argument("--nst-style-weight", type=float, default=100.0,
                        help="nst's style weight in the race (100: pastiche's trade-off)")
    parser.add_argument("--nst-initial-iterations", type=int, default=100,
                        help="nst's iterations at the coarsest scale in the race")
    parser.add_argument("--nst-iterations", type=int, default=100,
                        help="nst's iterations at each finer scale in the race")
    parser.add_argument("--nst-save-every", type=int, default=5,
                        help="nst saves an image, which the race scores, every this many "
                             "iterations: 1 times its arrival to the iteration, but scoring "
                             "an image takes seconds at 1024 px")
    parser.add_argument("--content", type=Path, default=BENCH / "images" / "astronaut.png")
    parser.add_argument("--style", type=Path, default=BENCH / "images" / "painting.png")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--skip-speed", action="store_true")
    # For the child process only.
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=["fp32", "default"], help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main()
