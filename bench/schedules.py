"""Time to a good result: the presets as they are now against today's schedules, pinned.

    python bench/schedules.py                        # every preset below, three pairs
    python bench/schedules.py --presets full         # full resolution, halved (see SCALED)
    python bench/schedules.py --presets draft --pairs astronaut
    python bench/schedules.py --presets draft --overrides '{"iterations": 12}'   # try one

A preset's schedule (sizes, iteration counts, early stopping) decides how long an artist
waits far more than the speed of one iteration does. To tell whether a new schedule is
better, each preset runs as it is now *and* as a fixed reference: the schedule it had before
issue 13 (``REFERENCE``), which never changes, so the ratio can be repeated later. Every run
is a fresh ``nst``-engine process that saves an image every few iterations; one evaluator
(``bench/quality.py``) scores them all, and we report when the current preset first reaches
the reference's final quality (style SWD and content both at least as good), as a fraction
of the reference's time.

Times are the child process's CPU time (``time.process_time``, from its start, weights
loading included), not wall time: the machine this was written on is shared, and another
user's work stretches wall time but hardly CPU time. Each child runs one thread
(``--threads``), since idle threads waiting on a busy machine burn CPU time too, and the
children run one after another, never side by side. Runs are stored in ``--out`` and reused
while their settings are the same; ``--rerun`` runs them all again, which is needed after a
change to the engine or to the cost of an iteration. The reference pins the schedule, not
the engine: a reference run repeated after an engine change runs today's schedule on the
new engine. To keep the yardstick of the engine before a change, keep its stored reference
runs (or make them with a checkout of the older commit) and rerun only the current ones.
Every run uses one precision (``--precision``; ``auto`` is resolved once, here, and the
report says which it picked and why): a child timing bf16 against fp32 for itself could
pick differently from the next on a busy machine.

Writes schedules.json and schedules.md into --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchmark import enlarged  # noqa: E402
from painting import painting  # noqa: E402
from quality import Evaluator, Scores  # noqa: E402
from skyline import skyline  # noqa: E402

from nst_engine import Settings, StyleTransfer  # noqa: E402
from nst_engine.device import (  # noqa: E402
    explain_precision,
    precision_name,
    resolve_precision,
    select_device,
)
from nst_engine.images import from_array, resize, to_array, to_numpy, to_tensor  # noqa: E402
from nst_engine.transfer import Progress  # noqa: E402

#: Today's schedules (before issue 13), pinned: the yardstick every later schedule is
#: measured against. Early stopping off: every iteration count is exact.
REFERENCE: dict[str, dict[str, object]] = {
    "draft": {"size": 384, "scales": 2, "initial_iterations": 80, "iterations": 40},
    "balanced": {"size": 512, "scales": 2, "initial_iterations": 200, "iterations": 100},
    "full": {"size": 1024, "scales": 3, "initial_iterations": 300, "iterations": 150,
             "full_resolution": True, "full_iterations": 50},
}
#: The loss every reference runs, as every preset had it before issue 13: the raw outputs
#: of the convolutions (now the ReLUs' outputs, at style weight 7).
REFERENCE_LOSS: dict[str, object] = {
    "content_layers": ["conv4_2"],
    "style_layers": {f"conv{block}_1": 1.0 for block in range(1, 6)},
    "style_weight": 10.0,
}
#: Settings both runs of a preset take here, to fit a CPU. ``full`` runs with every side
#: halved: 128, 256 and 512 px, then the canvas's own 1024 px (``CANVAS``), the same
#: schedule and the same kind of last scale, in minutes. As the product runs it (1024 px,
#: then a 2048 px canvas) one run takes about an hour on a 2-core CPU.
SCALED: dict[str, dict[str, object]] = {"full": {"size": 512}}
#: Longest side of the contents and styles a preset runs on, where they are not the
#: pairs' own (512 px and less): full resolution needs a canvas larger than ``size``.
CANVAS: dict[str, int] = {"full": 1024}
#: Content/style pairs: photographs and a generated city, against generated paintings.
PAIRS = ("astronaut", "chelsea", "skyline")
#: An image is saved (and later scored) every this many iterations.
SAVE_EVERY = 5
#: Each preset's final scores may be at most this much worse than the reference's.
QUALITY_SLACK = 0.05


def main() -> None:
    args = _parser().parse_args()
    if args.command == "child":
        torch.set_num_threads(args.threads)
        _child(json.loads(args.settings), args.content, args.style, args.workspace,
               args.device)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    # "auto" is resolved here, once: each child timing bf16 against fp32 for itself could
    # pick differently from the next on a busy machine, and the runs would not compare.
    device = select_device(args.device)
    args.why = explain_precision(device, args.precision)
    args.precision = precision_name(resolve_precision(device, args.precision))
    rows = []
    for preset in args.presets:
        for pair in args.pairs:
            rows.append(_compare(args, preset, pair))
            (args.out / "schedules.json").write_text(json.dumps(
                {"machine": _machine(args), "rows": rows}, indent=2))
    (args.out / "schedules.md").write_text(_markdown(_machine(args), rows))
    print((args.out / "schedules.md").read_text())


# --- one run, in a child process ----------------------------------------------------------

def _child(settings: dict, content: Path, style: Path, workspace: Path, device: str) -> None:
    """Stylise once, saving an image every ``SAVE_EVERY`` iterations; write trace.json with
    the CPU time of each image and the loss after every iteration."""
    workspace.mkdir(parents=True, exist_ok=True)
    for old in workspace.glob("*.png"):
        old.unlink()
    engine = StyleTransfer(device=device)
    images: list[dict] = []
    losses: list[dict] = []

    def on_progress(progress: Progress) -> None:
        if progress.tile < progress.tiles:
            return
        cpu = time.process_time()
        losses.append({"iteration": progress.iteration, "scale": progress.scale,
                       "total": progress.losses["total"], "cpu_s": cpu})
        if progress.preview is not None:
            path = workspace / f"iteration_{progress.iteration:05d}.png"
            progress.preview.save(path)
            images.append({"path": path.name, "iteration": progress.iteration,
                           "scale": progress.scale, "cpu_s": cpu})

    result = engine.stylize(str(content), [str(style)],
                            Settings.from_dict({**settings, "preview_every": SAVE_EVERY}),
                            callback=on_progress)
    result.save(workspace / "final.png")
    images.append({"path": "final.png", "iteration": losses[-1]["iteration"],
                   "scale": losses[-1]["scale"], "cpu_s": time.process_time()})
    (workspace / "trace.json").write_text(json.dumps({"images": images, "losses": losses}))


def _run(args: argparse.Namespace, settings: dict, content: Path, style: Path,
         workspace: Path, reuse: bool) -> dict:
    trace = workspace / "trace.json"
    stored = workspace / "settings.json"
    if not (reuse and trace.exists() and stored.exists()
            and json.loads(stored.read_text()) == settings):
        trace.unlink(missing_ok=True)
        subprocess.run([sys.executable, __file__, "child", "--settings", json.dumps(settings),
                        "--content", str(content), "--style", str(style),
                        "--workspace", str(workspace), "--device", args.device,
                        "--threads", str(args.threads)], check=True)
        stored.write_text(json.dumps(settings))
    return json.loads(trace.read_text())


# --- comparison ---------------------------------------------------------------------------

def _compare(args: argparse.Namespace, preset: str, pair: str) -> dict:
    content, style = _pair(args.out / "images", pair, CANVAS.get(preset))
    # Both runs in the one precision picked for the whole benchmark (see main).
    pinned = {"seed": 0, "precision": args.precision, **SCALED.get(preset, {})}
    reference = {**Settings.from_preset(preset, **REFERENCE[preset], **REFERENCE_LOSS,
                                        tolerance=0.0).to_dict(), **pinned}
    current = {**Settings.from_preset(preset, **{**args.overrides, **pinned}).to_dict()}
    work = args.out / f"schedules-{preset}-{pair}"
    runs = {name: _run(args, settings, content, style, work / name, reuse=not args.rerun)
            for name, settings in (("reference", reference), ("current", current))}
    with Image.open(content) as opened:
        content_size = (opened.height, opened.width)
    # Scored at the size the run delivers its detail at: a full-resolution result at the
    # canvas's own, which a score at ``size`` would blur away.
    scored = max(content_size) if current["full_resolution"] else int(current["size"])
    evaluator = Evaluator(content, style, scored)
    ref_final, cur_final = (_final(evaluator, work / name, runs[name])
                            for name in ("reference", "current"))
    reached = _first_reaching(evaluator, work / "current", runs["current"], ref_final[1],
                              content_size)
    row = {
        "preset": preset, "pair": pair, "content": content.name, "style": style.name,
        "reference": {"schedule": {**REFERENCE[preset], **SCALED.get(preset, {})},
                      "cpu_s": ref_final[0],
                      "iterations": runs["reference"]["images"][-1]["iteration"],
                      "final": ref_final[1].as_dict()},
        "current": {"schedule": {k: current[k] for k in (*REFERENCE[preset], "tolerance")},
                    "cpu_s": cur_final[0],
                    "iterations": runs["current"]["images"][-1]["iteration"],
                    "final": cur_final[1].as_dict()},
        "current_reaches_reference_at_cpu_s": reached,
        "ratio": None if reached is None else reached / ref_final[0],
        "final_within_slack": _within(cur_final[1], ref_final[1]),
    }
    print(f"{preset} {pair}: reference {ref_final[0]:.0f} s CPU, current {cur_final[0]:.0f} s, "
          f"reached at {reached}, ratio {row['ratio']}", flush=True)
    return row


def _final(evaluator: Evaluator, workspace: Path, run: dict) -> tuple[float, Scores]:
    image = run["images"][-1]
    return image["cpu_s"], evaluator.score(workspace / image["path"])


def _first_reaching(evaluator: Evaluator, workspace: Path, run: dict, target: Scores,
                    content_size: tuple[int, int]) -> float | None:
    """CPU time of the run's first image at least as good as ``target``, looking only at
    its finest scale: an image of a coarser one is upsampled, and so blurred that it never
    comes close (style SWD 0.29 against 0.08 on the draft's first pair). Scoring stops at
    the first that reaches it: on a busy 2-core machine each score takes seconds.

    Each preview is scored as a run ending there would deliver it, resized to the
    content's size (``target`` is such a result): the preview at the processing size is
    sharper than that. On the draft's first pair (384 px for a 512 px content) the
    reference's last preview scored SWD 0.135 and the result made from it 0.161; a schedule
    whose previews "reached" the reference at 0.90 of its time never did as delivered."""
    finest = run["images"][-1]["scale"]
    for image in run["images"]:
        if image["scale"] != finest:
            continue
        delivered = _delivered(workspace / image["path"], content_size)
        if evaluator.score(delivered).at_least_as_good_as(target):
            return image["cpu_s"]
    return None


def _delivered(preview: Path, size: tuple[int, int]) -> Image.Image:
    """A preview resized to ``size`` (height, width) as the engine resizes its result."""
    with Image.open(preview) as opened:
        array = to_array(opened.convert("RGB"))
    return from_array(to_numpy(resize(to_tensor(array, torch.device("cpu")), size)))


def _within(current: Scores, reference: Scores) -> bool:
    """Each final score at most ``QUALITY_SLACK`` worse than the reference's."""
    return (current.style_swd <= reference.style_swd * (1 + QUALITY_SLACK)
            and current.content <= reference.content * (1 + QUALITY_SLACK))


def _pair(folder: Path, name: str, canvas: int | None = None) -> tuple[Path, Path]:
    """The content and style of a named pair; generated ones are made on first use. With a
    ``canvas`` side, the photographs are enlarged to it (the ones we ship are 512 px and
    less), and the city and the paintings are drawn at it, sharp."""
    folder.mkdir(parents=True, exist_ok=True)
    if name not in PAIRS:
        raise ValueError(f"unknown pair '{name}'; one of {', '.join(PAIRS)}")
    side = canvas or 512
    seed = 1 if name == "chelsea" else 0
    style = BENCH / "images" / "painting.png"
    if canvas or seed:
        style = folder / f"painting-seed{seed}-{side}.png"
        if not style.exists():
            painting(side, seed=seed).save(style)
    if name == "skyline":
        content = folder / f"skyline-{side}.png"
        if not content.exists():
            skyline(side).save(content)
        return content, style
    photo = BENCH / "images" / f"{name}.png"
    return (enlarged(photo, canvas, folder) if canvas else photo), style


# --- report -------------------------------------------------------------------------------

def _machine(args: argparse.Namespace) -> dict:
    from benchmark import _cpu_name  # the race's own description of the machine

    return {"name": _cpu_name(), "threads": args.threads, "torch": torch.__version__,
            "precision": args.why, "date": time.strftime("%Y-%m-%d")}


def _markdown(machine: dict, rows: list[dict]) -> str:
    lines = [f"Machine: {machine['name']}, {machine['threads']} thread(s) per run, torch "
             f"{machine['torch']}, {machine['date']}. Times are each run's CPU time (s). "
             f"Precision, for every run: {machine['precision']}.", "",
             "| preset | content / style | reference: iterations, CPU, SWD, content | now: "
             "iterations, CPU, SWD, content | CPU now / reference | final within 5% | now "
             "reaches the reference's final quality at |",
             "|---|---|---|---|---:|---|---:|"]
    for r in rows:
        ref, cur = r["reference"], r["current"]
        reached = r["current_reaches_reference_at_cpu_s"]
        lines.append(
            f"| {r['preset']} | {r['content']} / {r['style']} | {ref['iterations']}, "
            f"{ref['cpu_s']:.0f}, {ref['final']['style_swd']:.3f}, "
            f"{ref['final']['content']:.3f} | {cur['iterations']}, {cur['cpu_s']:.0f}, "
            f"{cur['final']['style_swd']:.3f}, {cur['final']['content']:.3f} | "
            f"{cur['cpu_s'] / ref['cpu_s']:.2f} | "
            f"{'yes' if r['final_within_slack'] else 'no'} | "
            f"{_reached(reached, r['ratio'])} |")
    return "\n".join(lines) + "\n"


def _reached(cpu_s: float | None, ratio: float | None) -> str:
    return "never" if cpu_s is None or ratio is None else f"{cpu_s:.0f} ({ratio:.2f})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "child"])
    parser.add_argument("--presets", nargs="+", default=list(REFERENCE), choices=list(REFERENCE))
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--overrides", type=json.loads, default={}, metavar="JSON",
                        help="settings that change the presets as they are now, to try a "
                             "schedule before it becomes one, e.g. '{\"iterations\": 12}'")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="for every run; auto is resolved once, as the server would")
    parser.add_argument("--rerun", action="store_true", help="run again, stored runs too")
    # For the child process only.
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--content", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--style", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main()
