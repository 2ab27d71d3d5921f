"""What live previews cost a job (issue 17): the same draft job with and without a reader.

    python bench/preview_cost.py                       # 400x300 content, draft preset
    python bench/preview_cost.py --readers none paced --size 400

Starts a server on a free loopback port, runs the job once unmeasured (the server then has the
style's Gram matrices cached, as for every later job), then the same seeded job once per reader:

- ``none``: nobody asks for previews, as with the GIMP plug-in;
- ``paced``: polls as the Krita plugin does, status every 0.5 s and a 512 px preview whenever
  its ``previews.PreviewPacer`` allows (at most once a second);
- ``every-poll``: the Krita plugin before issue 17, a preview at every poll whose iteration
  changed (run it against that version of the server for the before figure).

Prints each job's ``elapsed`` as the server measured it, the server process's CPU time during
the job (``cpu_s``, from /proc: Linux only), the previews fetched, and the reader's cost relative
to ``none``, in CPU time: on a machine shared with other work the wall time of the same job
varies by more than a preview costs, while the CPU time the server spends does not. Writes
bench/results/preview_cost.json. Only the server's side is measured: Krita's own drawing of the
previews runs in Krita.
"""

from __future__ import annotations

import argparse
import json
import os
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(client: Client, pid: int, content: Path, style: Path, reader: str) -> dict:
    cpu = cpu_seconds(pid)
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
    return {"reader": reader, "elapsed": status["elapsed"],
            "cpu_s": round(cpu_seconds(pid) - cpu, 2), "previews": fetched}


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
        pid = server.process.pid
        run(client, pid, content, style, "none")  # warm-up
        runs = [run(client, pid, content, style, reader) for reader in args.readers]
    base = next((r["cpu_s"] for r in runs if r["reader"] == "none"), None)
    for entry in runs:
        entry["overhead"] = round(entry["cpu_s"] / base - 1, 3) if base else None
    out = BENCH / "results" / "preview_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(runs, indent=2))
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
