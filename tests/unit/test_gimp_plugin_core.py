"""The GIMP plug-in's parts that need no GIMP: exchange formats and the watchdog.

The GIMP-facing parts are proven in real GIMP by tests/editors/test_gimp_plugin.py.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
sys.path[:0] = [str(PLUGINS), str(PLUGINS / "gimp" / "neural-style-transfer")]

import nst_client  # noqa: E402
from nst_gimp import watchdog  # noqa: E402
from nst_gimp.formats import UnsupportedPrecision, babl_format, exchange_format  # noqa: E402


# ---------------------------------------------------------------------------------- formats
@pytest.mark.parametrize(
    ("nick", "babl", "sample"),
    [
        ("u8-non-linear", "R'G'B'A u8", "u8"),
        ("u8-perceptual", "R'G'B'A u8", "u8"),
        ("u16-non-linear", "R'G'B'A u16", "u16"),
        ("half-perceptual", "R'G'B'A half", "f16"),
        ("float-non-linear", "R'G'B'A float", "f32"),
        # Linear, 32-bit integer and double: sRGB-curve float, so nothing is rounded.
        ("u8-linear", "R'G'B'A float", "f32"),
        ("u16-linear", "R'G'B'A float", "f32"),
        ("float-linear", "R'G'B'A float", "f32"),
        ("u32-non-linear", "R'G'B'A float", "f32"),
        ("double-perceptual", "R'G'B'A float", "f32"),
    ],
)
def test_exchange_format_keeps_the_precision(nick, babl, sample):
    fmt = exchange_format(nick)
    assert (babl_format(fmt), fmt.sample, fmt.channels) == (babl, sample, "RGBA")
    assert fmt.byte_count(3, 2) == 3 * 2 * 4 * {"u8": 1, "u16": 2, "f16": 2, "f32": 4}[sample]


def test_unknown_precision_says_what_to_do():
    with pytest.raises(UnsupportedPrecision, match="Image > Precision"):
        exchange_format("u64-non-linear")


# --------------------------------------------------------------------------------- watchdog
@pytest.fixture
def recorder():
    """A loopback server that records every request line and answers DELETE like the server."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self):
            seen.append(f"DELETE {self.path} {self.headers.get('Authorization')}")
            body = b'{"id": "job-1", "state": "cancelled"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield nst_client.Client(f"http://127.0.0.1:{server.server_address[1]}", "tok"), seen
    server.shutdown()
    server.server_close()


def test_watchdog_cancels_the_job_when_the_plugin_dies(recorder):
    client, seen = recorder
    process = watchdog._start(client, "job-1")
    process.stdin.close()  # what the kernel does when GIMP kills the plug-in
    assert process.wait(timeout=20) == 0
    assert seen == ["DELETE /v1/jobs/job-1 Bearer tok"]


def test_watchdog_leaves_the_job_alone_after_a_normal_end(recorder, monkeypatch):
    client, seen = recorder
    started: list = []
    start = watchdog._start
    monkeypatch.setattr(
        watchdog, "_start", lambda *args: started.append(start(*args)) or started[0]
    )
    with watchdog.cancel_if_killed(client, "job-1"):
        pass
    assert started[0].wait(timeout=20) == 0
    assert seen == []
