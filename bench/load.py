"""Load test: many concurrent clients submit and poll; no job may be lost, no error but 429.

    python bench/load.py                          # 32 clients x 3 jobs, under 5 minutes
    python bench/load.py --clients 64 --jobs 5 --max-queue 8
    python bench/load.py --hostile                # the same, with hostile clients meanwhile

Starts its own server on a free loopback port (nothing leaves the machine), with a small queue
so clients really meet 429 and have to retry after its Retry-After. Each client submits tiny
jobs, polls each to its end, and fetches the result. At the end every accepted job must be
``done`` with a result of the right size; any other status code, lost job or bad result is a
failure (exit status 1). Writes bench/results/load.json.

With ``--hostile``, hostile clients run alongside the honest ones from start to end: they hold
more event streams open than the server allows and drop them without a word, send bodies over
the upload limit and web-page requests without a token, and submit malformed and
decompression-bomb images. The honest clients' jobs must still all finish, each hostile
request must get the 4xx it deserves (never a 5xx), and ``/v1/health``, asked every 0.2 s,
must answer within a second every time.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from live_server import start_server  # noqa: E402

SETTINGS = json.dumps({"preset": "draft", "size": 32, "scales": 1, "initial_iterations": 2})


class Tally:
    """Counts shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.problems: list[str] = []
        self.accepted: list[str] = []
        self.latencies: list[float] = []

    def record(self, answer: requests.Response, started: float) -> None:
        with self.lock:
            self.statuses[answer.status_code] += 1
            self.latencies.append(time.monotonic() - started)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _png(seed: int, size: tuple[int, int] = (24, 16)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 4), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG")
    return buffer.getvalue()


#: What each kind of hostile request may be answered; anything else is a problem.
HOSTILE_ANSWERS = {"stream": {200, 429}, "oversize": {413}, "web page": {403},
                   "malformed": {400, 413}}


class Hostile:
    """What the hostile clients saw, and how slowly health answered meanwhile."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.health_max_s = 0.0
        self.problems: list[str] = []

    def record(self, kind: str, status: int) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            if status not in HOSTILE_ANSWERS[kind]:
                self.problems.append(f"{kind}: answered {status}")

    def health(self, took: float, error: str | None) -> None:
        with self.lock:
            self.health_max_s = max(self.health_max_s, took)
            if error is not None or took >= 1.0:
                self.problems.append(f"health: {error or 'answered'} after {took:.2f} s")


def _tiff_of_50_samples() -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((1000, 1000, 50), np.uint16), photometric="minisblack",
                     planarconfig="contig", compression="zlib")
    return buffer.getvalue()


def _bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8000, 8000)).save(buffer, "PNG")  # 64 MP in a 100 KB file
    return buffer.getvalue()


def _hold_streams(url: str, token: str, tally: Tally, hostile: Hostile,
                  stop: threading.Event) -> None:
    """Open an event stream on a job, hold it a while, drop it without reading; again."""
    while not stop.is_set():
        with tally.lock:
            job_id = tally.accepted[0] if tally.accepted else None
        if job_id is None:
            time.sleep(0.2)
            continue
        stream = requests.get(f"{url}/v1/jobs/{job_id}/events", stream=True, timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        hostile.record("stream", stream.status_code)
        stop.wait(3.0)
        stream.close()


def _oversize_and_web_pages(url: str, limit: int, hostile: Hostile,
                            stop: threading.Event) -> None:
    """A body over the upload limit (headers only: it must be refused before the body), and
    a web page's POST without a token."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    while not stop.is_set():
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
                               f"Content-Type: text/plain\r\nContent-Length: {limit + 1}"
                               f"\r\n\r\n".encode())
            hostile.record("oversize", int(connection.recv(64).split()[1]))
        answer = requests.post(f"{url}/v1/jobs", data=b"x" * 2**20, timeout=30, headers={
            "Origin": "http://evil.example", "Content-Type": "text/plain"})
        hostile.record("web page", answer.status_code)
        stop.wait(0.5)


def _malformed(url: str, token: str, hostile: Hostile, stop: threading.Event) -> None:
    files = [b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, _tiff_of_50_samples(), _bomb()]
    style = _png(1)
    while not stop.is_set():
        for content in files:
            answer = requests.post(f"{url}/v1/jobs", timeout=60, data={"settings": SETTINGS},
                                   headers={"Authorization": f"Bearer {token}"},
                                   files={"content": ("c", content), "style": ("s.png", style)})
            hostile.record("malformed", answer.status_code)
        stop.wait(0.5)


def _probe_health(url: str, hostile: Hostile, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            answer = requests.get(f"{url}/v1/health", timeout=10)
            error = None if answer.ok else f"status {answer.status_code}"
        except requests.RequestException as failure:
            error = str(failure)
        hostile.health(time.monotonic() - started, error)
        stop.wait(0.2)


def _start_hostile(url: str, token: str, tally: Tally, hostile: Hostile,
                   stop: threading.Event) -> list[threading.Thread]:
    limits = requests.get(f"{url}/v1/health", timeout=30).json()["limits"]
    targets = [(_hold_streams, (url, token, tally, hostile, stop))] * (
        limits["max_event_streams"] * 2)
    targets += [(_oversize_and_web_pages, (url, limits["max_upload_bytes"], hostile, stop)),
                (_malformed, (url, token, hostile, stop)), (_probe_health, (url, hostile, stop))]
    threads = [threading.Thread(target=target, args=args, daemon=True)
               for target, args in targets]
    for thread in threads:
        thread.start()
    return threads


def _client(index: int, jobs: int, url: str, token: str, deadline: float, tally: Tally) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    style = _png(10_000 + index % 4)  # four distinct styles: the style cache gets hits
    for job in range(jobs):
        content = _png(index * 1000 + job)
        while True:  # submit, honouring 429's Retry-After
            started = time.monotonic()
            answer = session.post(f"{url}/v1/jobs", data={"settings": SETTINGS}, timeout=60,
                                  files={"content": ("c.png", content), "style": ("s.png", style)})
            tally.record(answer, started)
            if answer.status_code == 202:
                break
            if answer.status_code != 429:
                tally.problem(f"client {index}: submit answered {answer.status_code}")
                return
            if time.monotonic() > deadline:
                tally.problem(f"client {index}: still refused at the deadline")
                return
            time.sleep(min(float(answer.headers.get("Retry-After", 1)), 2.0))
        job_id = answer.json()["id"]
        with tally.lock:
            tally.accepted.append(job_id)
        _follow(session, url, job_id, deadline, tally)


def _follow(session: requests.Session, url: str, job_id: str, deadline: float,
            tally: Tally) -> None:
    while time.monotonic() < deadline:
        started = time.monotonic()
        answer = session.get(f"{url}/v1/jobs/{job_id}", timeout=60)
        tally.record(answer, started)
        state = answer.json().get("state") if answer.ok else None
        if state in ("failed", "cancelled") or not answer.ok:
            tally.problem(f"job {job_id}: {answer.status_code} {answer.text[:200]}")
            return
        if state == "done":
            result = session.get(f"{url}/v1/jobs/{job_id}/result", timeout=60)
            tally.record(result, started)
            if not result.ok or Image.open(io.BytesIO(result.content)).size != (24, 16):
                tally.problem(f"job {job_id}: bad result ({result.status_code})")
            return
        time.sleep(0.25)
    tally.problem(f"job {job_id}: not done by the deadline")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=3, help="jobs per client")
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--hostile", action="store_true",
                        help="run hostile clients alongside the honest ones")
    args = parser.parse_args()

    tally, hostile, stop = Tally(), Hostile(), threading.Event()
    with tempfile.TemporaryDirectory() as folder, start_server(
            Path(folder), ["--max-queue", str(args.max_queue), "--threads", "48"]) as server:
        started = time.monotonic()
        deadline = started + args.time_limit
        threads = (_start_hostile(server.url, server.token, tally, hostile, stop)
                   if args.hostile else [])
        with ThreadPoolExecutor(args.clients) as pool:
            for index in range(args.clients):
                pool.submit(_client, index, args.jobs, server.url, server.token, deadline, tally)
        wall = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(60)
        # Every accepted job must still be known and done, checked after the storm.
        for job_id in tally.accepted:
            state = requests.get(f"{server.url}/v1/jobs/{job_id}", headers=server.headers(),
                                 timeout=30).json().get("state")
            if state != "done":
                tally.problem(f"job {job_id} ended {state}")

    expected = args.clients * args.jobs
    other = {code: n for code, n in tally.statuses.items() if code not in (200, 202, 429)}
    latencies = sorted(tally.latencies)
    report = {
        "clients": args.clients, "jobs_per_client": args.jobs, "max_queue": args.max_queue,
        "expected_jobs": expected, "accepted_jobs": len(tally.accepted),
        "wall_s": round(wall, 1), "jobs_per_s": round(len(tally.accepted) / wall, 2),
        "requests": sum(tally.statuses.values()), "status_codes": dict(tally.statuses),
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
        "problems": tally.problems[:20],
        "passed": not tally.problems and not other and len(tally.accepted) == expected,
    }
    if args.hostile:
        report["hostile"] = {"answers": dict(hostile.statuses),
                             "health_max_ms": round(1000 * hostile.health_max_s, 1),
                             "problems": hostile.problems[:20]}
        report["passed"] = report["passed"] and not hostile.problems
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
