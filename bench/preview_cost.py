"""What live previews cost a job (issue 17): the same draft job with and without a reader.

    python bench/preview_cost.py                       # 400x300 content, draft preset
    python bench/preview_cost.py --readers none paced --size 400

Starts a server on a free loopback port and runs the same seeded job once per reader:

- ``none``: nobody asks for previews, as with the GIMP plug-in;
- ``paced``: polls as the Krita plugin does, status every 0.5 s and a 512 px preview whenever
  its ``previews.PreviewPacer`` allows (at most once a second);
- ``every-poll``: the Krita plugin before issue 17, a preview at every poll whose iteration
  changed (run it against that version of the server for the before figure).

Prints each job's ``elapsed`` as the server measured it, the previews fetched, and the cost of
the reader relative to ``none``. Writes bench/results/preview_cost.json. Only the server's side
is measured: Krita's own drawing of the previews runs in Krita.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "tests"), str(BENCH.parent / "plugins"),
                str(BENCH.parent / "plugins" / "krita")]

from live_server import start_server  # noqa: E402
from nst_client import Client  # noqa: E402

SETTINGS = {"preset": "draft", "seed": 0}
POLL_S = 0.5  # the plugins' status poll
PREVIEW_SIDE = 512  # what the Krita plugin asks for


def run(client: Client, content: Path, style: Path, reader: str) -> dict:
    job = client.submit_file(content, [style], SETTINGS)
    fetched, last_iteration = 0, None
    pacer = None
    if reader == "paced":
        from neural_style_transfer import previews
        pacer = previews.PreviewPacer()
    while (status := client.status(job))["state"] in ("queued", "running"):
        if pacer is not None and status["state"] == "running" and pacer.due():
            fetched += previews.fetch(client, job, PREVIEW_SIDE) is not None
        elif (reader == "every-poll" and status.get("has_preview")
              and status["iteration"] != last_iteration):
            last_iteration = status["iteration"]
            fetched += client.preview(job, PREVIEW_SIDE) is not None
        time.sleep(POLL_S)
    assert status["state"] == "done", status
    return {"reader": reader, "elapsed": status["elapsed"], "previews": fetched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", nargs="+", default=["none", "paced"],
                        choices=["none", "paced", "every-poll"])
    parser.add_argument("--size", type=int, default=400, help="content's longest side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, start_server(Path(folder) / "server") as server:
        content, style = Path(folder) / "content.png", Path(folder) / "style.png"
        photo = Image.open(BENCH / "images" / "chelsea.png").convert("RGB")
        photo.thumbnail((args.size, args.size))
        photo.save(content)
        Image.open(BENCH / "images" / "painting.png").convert("RGB").save(style)
        client = Client(server.url, server.token)
        runs = [run(client, content, style, reader) for reader in args.readers]
    base = next((r["elapsed"] for r in runs if r["reader"] == "none"), None)
    for entry in runs:
        entry["overhead"] = round(entry["elapsed"] / base - 1, 3) if base else None
    out = BENCH / "results" / "preview_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(runs, indent=2))
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
