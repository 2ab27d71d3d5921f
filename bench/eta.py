"""How far off is the first time estimate an artist sees? (issue 17)

    python bench/eta.py                  # draft preset, chelsea.png at 256 px, two jobs

Runs the same job twice on one engine, as a server's worker does, and scores the first
estimate each rule would show against the time that really was left then (estimate / truth,
1.0 is exact), all from the same two runs:

- *old*: elapsed x (work left / work done) after the first iteration, the rule before issue 17;
- *engine*: the engine's first estimate, made once a job's first iteration (warm-up) is behind;
- *server*: the second job's estimate after its first iteration, from the rate the first job
  showed (``server.rates.DeviceRate``), which is what the server answers until the engine knows.

Writes bench/results/eta.json. The machine's load moves all three the same way.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from nst_engine import Progress, Settings, StyleTransfer  # noqa: E402
from nst_engine.images import load_image  # noqa: E402
from nst_server.rates import DeviceRate  # noqa: E402


def run(engine: StyleTransfer, content, style, settings: Settings) -> list[Progress]:
    reports: list[Progress] = []
    engine.stylize(content, [style], settings, callback=reports.append)
    return reports


def left(reports: list[Progress], report: Progress) -> float:
    """Seconds the run really had left at ``report``."""
    return reports[-1].elapsed - report.elapsed


def score(estimate: float | None, truth: float) -> float | None:
    return None if estimate is None or truth <= 0 else round(estimate / truth, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--size", type=int, default=256, help="content's longest side")
    args = parser.parse_args()
    content = load_image(BENCH / "images" / "chelsea.png").convert("RGB")
    content.thumbnail((args.size, args.size))
    style = load_image(BENCH / "images" / "painting.png").convert("RGB")
    engine = StyleTransfer(device="auto")
    settings = Settings.from_preset(args.preset, seed=0, preview_every=0)
    first, second = run(engine, content, style, settings), run(engine, content, style, settings)
    rate = DeviceRate()
    rate.learn(first[-1])
    old = first[0].elapsed * (first[0].work_total - first[0].work_done) / first[0].work_done
    shown = next(r for r in first if r.eta is not None)
    server = rate.estimate(second[0])
    results = {
        "device": engine.describe()["device"], "preset": args.preset,
        "content": list(content.size), "seconds": [first[-1].elapsed, second[-1].elapsed],
        "first_iterations_s": [round(first[0].elapsed, 3)] + [
            round(b.elapsed - a.elapsed, 3) for a, b in itertools.pairwise(first[:6])],
        "old": {"iteration": 1, "estimate": old, "truth": left(first, first[0]),
                "ratio": score(old, left(first, first[0]))},
        "engine": {"iteration": shown.iteration, "estimate": shown.eta,
                   "truth": left(first, shown), "ratio": score(shown.eta, left(first, shown))},
        "server": {"iteration": 1, "estimate": server.eta, "truth": left(second, second[0]),
                   "ratio": score(server.eta, left(second, second[0]))},
    }
    out = BENCH / "results" / "eta.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
