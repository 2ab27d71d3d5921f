"""The shared plugin client against the real server: ``create_app`` with a stub engine.

The server is the real Flask app (routes, token and Host checks, multipart parsing, job queue,
worker, error codes), served on loopback by Werkzeug; only the engine is a stub that answers in
milliseconds (tests/stub_engine.py). So these tests break when the client and the server stop
agreeing on the wire: field names, id format, error codes, headers.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stub_engine import StubEngine
from werkzeug.serving import make_server

from nst_server.app import create_app
from nst_server.config import Limits, ServerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

import nst_client
from nst_client import (
    ApiError,
    AuthError,
    BadResponse,
    Client,
    JobCancelled,
    JobFailed,
    PixelLayout,
    QueueFull,
    ServerGone,
    ServerUnavailable,
    StyleRequest,
    run_job,
)

TOKEN = "s3cret"
#: Two iterations at one scale: the stub reports each, so a job takes milliseconds.
QUICK = {"preset": "draft", "size": 32, "scales": 1, "initial_iterations": 2}


@dataclass
class RealServer:
    """The real app on a free loopback port, and what reached it (method, path, token)."""

    engine: StubEngine
    url: str = ""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None


def serve(tmp_path: Path, engine: StubEngine, *, start: bool = True,
          limits: Limits | None = None) -> Iterator[RealServer]:
    config = ServerConfig(data_dir=tmp_path / "data", token=TOKEN, limits=limits or Limits(),
                          sweep_interval_s=3600)
    app = create_app(config, [engine], start=start)
    real = RealServer(engine)

    def recording(environ, start_response):  # WSGI: note the request, then the real app
        real.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]
                          + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""),
                          environ.get("HTTP_AUTHORIZATION")))
        return app(environ, start_response)

    httpd = make_server("127.0.0.1", 0, recording, threaded=True)
    real.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            httpd.shutdown()
            httpd.server_close()

    real.stop = stop
    service = app.extensions["nst"]
    try:
        yield real
    finally:
        stop()
        if start:
            service.stop()
        else:  # no worker thread to join
            service.store.close()


@pytest.fixture
def engine() -> StubEngine:
    return StubEngine()


@pytest.fixture
def server(tmp_path, engine) -> Iterator[RealServer]:
    yield from serve(tmp_path, engine)


@pytest.fixture
def client(server) -> Client:
    return Client(server.url, TOKEN, timeout=5, token_source="a test")


def png_file(path: Path, pixels: np.ndarray) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def style(tmp_path) -> Path:
    y, x = np.mgrid[0:16, 0:16]
    stripes = ((x + y) // 4 % 2 * 255).astype(np.uint8)
    return png_file(tmp_path / "starry night.png", np.stack([stripes, 255 - stripes, stripes], 2))


def raw_bgra_u16(width: int = 4, height: int = 2) -> bytes:
    """Every alpha from clear to opaque, colour a gradient: BGRA, 16 bits, little-endian."""
    pixels = np.zeros((height, width, 4), dtype="<u2")
    pixels[..., 0] = np.arange(width * height).reshape(height, width) * 4000
    pixels[..., 1] = 30000
    pixels[..., 2] = 65535
    pixels[..., 3] = np.linspace(0, 65535, width * height).reshape(height, width)
    return pixels.tobytes()


def dead_url() -> str:
    """A loopback URL on which nothing listens (port freshly closed)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}"


# ----------------------------------------------------------------------------------- discovery
def test_config_dir_per_platform():
    env = {"HOME": "/home/ann", "APPDATA": r"C:\Users\ann\AppData\Roaming"}
    assert nst_client.config_dir("linux", env) == Path("/home/ann/.config/nst-server")
    assert nst_client.config_dir("linux", {**env, "XDG_CONFIG_HOME": "/x"}) == Path("/x/nst-server")
    assert nst_client.config_dir("darwin", env) == Path(
        "/home/ann/Library/Application Support/nst-server"
    )
    assert nst_client.config_dir("win32", env) == Path(env["APPDATA"]) / "nst-server"


def test_config_dir_inside_a_flatpak_editor_is_the_hosts():
    """Flatpak points XDG_CONFIG_HOME at the app's folder; the server wrote to the host's."""
    env = {"HOME": "/home/ann", "FLATPAK_ID": "org.gimp.GIMP"}
    sandboxed = {**env, "XDG_CONFIG_HOME": "/home/ann/.var/app/org.gimp.GIMP/config"}
    assert nst_client.config_dir("linux", sandboxed) == Path("/home/ann/.config/nst-server")
    host_xdg = {**sandboxed, "HOST_XDG_CONFIG_HOME": "/cfg"}
    assert nst_client.config_dir("linux", host_xdg) == Path("/cfg/nst-server")


def test_discover_reads_connection_file(tmp_path):
    folder = tmp_path / "nst-server"
    folder.mkdir()
    (folder / "connection.json").write_text(
        json.dumps({"url": "http://127.0.0.1:9999/", "token": "abc"})
    )
    found = Client.discover(env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    assert (found.url, found.token) == ("http://127.0.0.1:9999", "abc")
    assert "connection.json" in found.token_source


def test_environment_overrides_connection_file(tmp_path):
    folder = tmp_path / "nst-server"
    folder.mkdir()
    (folder / "connection.json").write_text(json.dumps({"url": "http://file", "token": "f"}))
    env = {"XDG_CONFIG_HOME": str(tmp_path), "NST_SERVER_URL": "http://env:1", "NST_TOKEN": "e"}
    found = Client.discover(env=env)
    assert (found.url, found.token) == ("http://env:1", "e")
    # Only the URL from the environment: the token still comes from the file.
    found = Client.discover(env={"XDG_CONFIG_HOME": str(tmp_path), "NST_SERVER_URL": "http://x"})
    assert (found.url, found.token) == ("http://x", "f")


def test_discover_without_server_says_how_to_start(tmp_path):
    with pytest.raises(ServerUnavailable, match="nst-server"):
        Client.discover(env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})


def test_corrupt_connection_file_is_explained(tmp_path):
    (tmp_path / "nst-server").mkdir()
    (tmp_path / "nst-server" / "connection.json").write_text("{not json")
    with pytest.raises(ServerUnavailable, match="connection file"):
        Client.discover(env={"XDG_CONFIG_HOME": str(tmp_path)})


# -------------------------------------------------------------------------------------- calls
def test_health_needs_no_token(server):
    health = Client(server.url, None).health()
    assert (health["status"], health["device"]) == ("ok", "stub")
    assert server.seen[-1] == ("GET", "/v1/health", None)


def test_dead_server_is_unavailable_with_hint():
    with pytest.raises(ServerUnavailable, match="nst-server") as info:
        Client(dead_url(), TOKEN, timeout=2).health()
    assert not isinstance(info.value, ServerGone)


def test_submit_raw_sends_layout_pixels_styles_mask_and_settings(server, client, style):
    pixels = raw_bgra_u16()
    mask = bytes([0, 255, 255, 0, 0, 255, 255, 0])
    job = client.submit_raw(
        pixels, 4, 2, "BGRA", "u16", [style, style], QUICK, style_weights=[1, 3], mask=mask
    )
    assert len(job) == 32 and int(job, 16) >= 0  # the server's own id format
    assert server.seen[-1] == ("POST", "/v1/jobs", f"Bearer {TOKEN}")
    assert client.wait(job, poll_interval=0.01)["state"] == "done"
    (call,) = server.engine.calls
    assert call["settings"].preset == "draft" and call["settings"].total_iterations() == 2
    assert call["blend"] == [1.0, 3.0] and len(call["styles"]) == 2
    assert call["styles"][0].shape == (16, 16, 3)
    # The stub hands the colour back: the layout went there and back unchanged, and the
    # alpha is the layer's times the mask.
    result = np.frombuffer(client.result(job), dtype="<u2").reshape(2, 4, 4)
    sent = np.frombuffer(pixels, dtype="<u2").reshape(2, 4, 4)
    assert np.array_equal(result[..., :3], sent[..., :3])
    inside = np.frombuffer(mask, dtype=np.uint8).reshape(2, 4) == 255
    assert np.array_equal(result[..., 3][inside], sent[..., 3][inside])
    assert not result[..., 3][~inside].any()


def test_submit_file_sends_the_file_without_layout(server, client, style, tmp_path):
    content = png_file(tmp_path / "cat.png", np.full((6, 5, 3), 200, dtype=np.uint8))
    job = client.submit_file(content, [style])
    assert client.wait(job, poll_interval=0.01)["state"] == "done"
    (call,) = server.engine.calls
    assert call["content"].shape == (6, 5, 3) and call["blend"] is None
    assert call["settings"].preset == "balanced"  # no settings part: the server's default
    result = Image.open(io.BytesIO(client.result(job)))
    assert (result.format, result.size) == ("PNG", (5, 6))


def test_missing_style_file_is_explained(client, tmp_path):
    with pytest.raises(nst_client.NSTClientError, match="Choose another file"):
        client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [tmp_path / "gone.png"])


def test_wrong_token_says_where_the_token_lives(server, style):
    bad = Client(server.url, "wrong", token_source="the NST_TOKEN environment variable")
    with pytest.raises(AuthError) as info:
        bad.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style])
    message = str(info.value)
    assert "NST_TOKEN" in message and "connection.json" in message


def test_full_queue_reports_retry_after(tmp_path, engine, style):
    for stopped in serve(tmp_path, engine, start=False, limits=Limits(max_queue=1)):
        client = Client(stopped.url, TOKEN, timeout=5)
        client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
        with pytest.raises(QueueFull) as info:
            client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
        assert info.value.status == 429 and info.value.code == "queue_full"
        assert info.value.retry_after is not None and info.value.retry_after >= 1


def test_api_errors_keep_code_and_message(client):
    with pytest.raises(ApiError) as info:
        client.status("nope")
    assert (info.value.status, info.value.code) == (404, "unknown_job")
    assert str(info.value).startswith("no job 'nope' on this server")


def test_server_refusals_keep_code_and_message(client, style):
    with pytest.raises(ApiError) as info:
        client.submit_raw(b"\0" * 3, 1, 1, "RGBA", "u8", [style], QUICK)
    assert (info.value.status, info.value.code) == (400, "layout_mismatch")
    with pytest.raises(ApiError) as info:
        client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], {"size": 1})
    assert (info.value.status, info.value.code) == (400, "bad_settings")


def test_preview_none_until_available_then_png(server, client, style):
    server.engine.hold.clear()  # the job waits before its first iteration
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    assert client.preview(job, 128) is None  # none yet; asking is what makes one
    server.engine.pause_after = 1
    server.engine.hold.set()
    while not client.status(job)["has_preview"]:
        time.sleep(0.01)
    png = client.preview(job, 128)
    assert png is not None and png.startswith(b"\x89PNG")
    assert server.seen[-1][1] == f"/v1/jobs/{job}/preview?size=128"
    server.engine.hold.set()
    assert not client.wait(job, poll_interval=0.01)["has_preview"]
    assert client.preview(job, 128) is None  # freed when the job ended


def test_result_before_done_is_not_ready(server, client, style):
    server.engine.hold.clear()
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    with pytest.raises(ApiError) as info:
        client.result(job)
    assert (info.value.status, info.value.code) == (409, "not_ready")
    server.engine.hold.set()


# --------------------------------------------------------------------------------------- wait
def test_wait_reports_progress_until_done(client, style):
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    seen = []
    final = client.wait(job, on_progress=seen.append, poll_interval=0.01)
    assert final["state"] == "done" and final["percent"] == 100.0 and final["id"] == job
    states = [s["state"] for s in seen]
    assert states[-1] == "done" and set(states) <= {"queued", "running", "done"}
    assert states == sorted(states, key=["queued", "running", "done"].index)


def test_wait_raises_job_failed_with_server_message(server, client, style):
    server.engine.fail_with = "Style image is corrupt."
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    with pytest.raises(JobFailed, match=r"Style image is corrupt\.") as info:
        client.wait(job, poll_interval=0.01)
    assert info.value.job_id == job


def test_wait_cancels_on_request(server, client, style):
    server.engine.hold.clear()  # never finishes by itself
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    with pytest.raises(JobCancelled):
        client.wait(job, should_cancel=lambda: True, poll_interval=0.01)
    assert ("DELETE", f"/v1/jobs/{job}", f"Bearer {TOKEN}") in server.seen
    assert client.status(job)["state"] == "cancelled"


def test_server_gone_mid_job_keeps_the_job_id(server, client, style):
    server.engine.hold.clear()
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    with pytest.raises(ServerGone) as info:
        client.wait(job, on_progress=lambda _: threading.Thread(target=server.stop).start(),
                    poll_interval=0.01, gone_after=0.2)
    assert info.value.job_id == job
    assert job in str(info.value) and "nst-server" in str(info.value)


# ---------------------------------------------------------------------------- the job flow
def test_run_job_returns_the_result_in_the_request_layout(server, client, style):
    layout = PixelLayout("BGRA", "u16")
    request = StyleRequest(raw_bgra_u16(), 4, 2, layout, [str(style)], QUICK)
    ids, statuses, held = [], [], []

    class Guard:
        def __init__(self, job_id):
            held.append(("enter", job_id))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            held.append(("exit", exc[0]))

    data = run_job(client, request, on_status=statuses.append, on_job_id=ids.append,
                   while_running=Guard)
    assert len(data) == layout.byte_count(4, 2) == 4 * 2 * 4 * 2
    assert held == [("enter", ids[0]), ("exit", None)]
    assert statuses[-1]["state"] == "done"


def test_run_job_resumes_a_job_by_id(server, client, style):
    job = client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style], QUICK)
    request = StyleRequest(b"", 1, 1, PixelLayout("RGBA", "u8"), [str(style)])
    assert len(run_job(client, request, job_id=job)) == 4
    assert len(server.engine.calls) == 1  # nothing was submitted again


def test_run_job_refuses_a_result_of_the_wrong_size(server, client, style):
    request = StyleRequest(b"\0" * 4, 1, 1, PixelLayout("RGBA", "u8"), [str(style)], QUICK)
    job = client.submit_raw(b"\0" * 8, 2, 1, "RGBA", "u8", [style], QUICK)  # larger
    with pytest.raises(BadResponse, match="more than 4 bytes"):  # read no further than that
        run_job(client, request, job_id=job)
    larger = StyleRequest(b"\0" * 16, 4, 1, PixelLayout("RGBA", "u8"), [str(style)], QUICK)
    with pytest.raises(nst_client.NSTClientError, match="8 bytes instead of 16"):
        run_job(client, larger, job_id=job)


# ------------------------------------------------------------------------------ a bad server
@dataclass
class Canned:
    """One answer of :func:`bad_server`."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BadServer:
    """A server that answers each path with what a test put in ``answers`` (404 otherwise),
    and notes the path of each request in ``seen``."""

    url: str
    answers: dict[str, Canned] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def client(self) -> Client:
        return Client(self.url, TOKEN, timeout=5)


@pytest.fixture
def bad_server() -> Iterator[BadServer]:
    answers: dict[str, Canned] = {}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            answer = answers.get(self.path.partition("?")[0], Canned(b"{}", 404))
            self.send_response(answer.status)
            headers = {"Content-Length": str(len(answer.body)), **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may hang up early, as it should
                self.wfile.write(answer.body)

        do_POST = do_GET

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield BadServer(f"http://127.0.0.1:{httpd.server_address[1]}", answers, seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


JOB = "0" * 32


@pytest.mark.parametrize("body", [b"<html>Welcome to nginx</html>", b"[1, 2]", b"\xff\xfe",
                                  b""])
def test_an_answer_that_is_not_a_json_object_is_a_readable_error(bad_server, body):
    answers = bad_server.answers
    answers["/v1/health"] = Canned(body)
    answers[f"/v1/jobs/{JOB}"] = Canned(body)
    with pytest.raises(BadResponse, match=r"not a JSON object.*another program"):
        bad_server.client().health()
    with pytest.raises(BadResponse, match="not a JSON object"):
        bad_server.client().wait(JOB, poll_interval=0.01)


def test_an_accepted_job_without_an_id_is_a_readable_error(bad_server, style):
    answers = bad_server.answers
    answers["/v1/jobs"] = Canned(b'{"state": "queued"}', 202)
    with pytest.raises(BadResponse, match="no job id"):
        bad_server.client().submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style])


def test_answers_are_read_only_up_to_a_bound(bad_server):
    answers = bad_server.answers
    answers["/v1/health"] = Canned(b"{" + b" " * nst_client.MAX_JSON_BYTES + b"}")
    with pytest.raises(BadResponse, match=f"more than {nst_client.MAX_JSON_BYTES} bytes"):
        bad_server.client().health()
    # A length announced as too large is refused before a byte of the body is read.
    answers[f"/v1/jobs/{JOB}/result"] = Canned(b"\0" * 64, headers={
        "Content-Length": str(2**40)})
    with pytest.raises(BadResponse, match="more than 1000 bytes for the result"):
        bad_server.client().result(JOB, max_bytes=1000)


def test_an_answer_cut_short_means_the_server_is_gone(bad_server):
    """A server killed while it answers leaves a body shorter than announced: that is the
    server going away (ServerGone keeps the job to resume), not a bad answer or a crash."""
    bad_server.answers[f"/v1/jobs/{JOB}"] = Canned(b'{"state": "run', headers={
        "Content-Length": "1000"})
    with pytest.raises(ServerUnavailable, match="Cannot reach"):
        bad_server.client().status(JOB)
    with pytest.raises(ServerGone) as gone:
        bad_server.client().wait(JOB, poll_interval=0.01, gone_after=0.1)
    assert gone.value.job_id == JOB


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("body", [png_bytes(129, 10), png_bytes(10, 4000),
                                  b"GIF89a" + b"\0" * 30])
def test_a_preview_larger_than_asked_or_not_a_png_is_refused(bad_server, body):
    answers = bad_server.answers
    answers[f"/v1/jobs/{JOB}/preview"] = Canned(body)
    with pytest.raises(BadResponse, match="at most 128x128 pixels"):
        bad_server.client().preview(JOB, 128)
    answers[f"/v1/jobs/{JOB}/preview"] = Canned(png_bytes(128, 60))
    assert bad_server.client().preview(JOB, 128) == png_bytes(128, 60)


def test_a_preview_too_many_bytes_for_its_size_is_not_read(bad_server):
    answers = bad_server.answers
    answers[f"/v1/jobs/{JOB}/preview"] = Canned(png_bytes(16, 16) + b"\0" * 200_000)
    with pytest.raises(BadResponse, match="bytes for a preview"):
        bad_server.client().preview(JOB, 16)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_refused_and_the_token_goes_nowhere_else(bad_server, status):
    answers = bad_server.answers
    answers["/v1/health"] = Canned(b"", status, {"Location": "/elsewhere"})
    answers[f"/v1/jobs/{JOB}"] = Canned(b"", status, {"Location": "/elsewhere"})
    answers["/elsewhere"] = Canned(b'{"state": "done"}')
    with pytest.raises(BadResponse, match=f"answered {status} with a redirect to /elsewhere"):
        bad_server.client().status(JOB)
    with pytest.raises(BadResponse, match="redirect"):
        bad_server.client().health()
    assert bad_server.seen == [f"/v1/jobs/{JOB}", "/v1/health"]


def test_pixel_layout_names_what_the_server_takes():
    assert PixelLayout("RGBA", "f16").bytes_per_sample == 2
    assert PixelLayout("BGRA", "f32").byte_count(3, 2) == 3 * 2 * 4 * 4
    assert PixelLayout("BGRA", "u8").as_dict(3, 2) == {
        "width": 3, "height": 2, "channels": "BGRA", "sample": "u8"}


def test_client_module_is_standard_library_only():
    """Krita and GIMP have no third-party packages: only stdlib imports are allowed."""
    import ast

    source = Path(nst_client.__file__).read_text()
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert modules <= set(sys.stdlib_module_names)


def test_no_proxy_from_the_environment_sees_the_token(server, bad_server):
    script = ("import sys, nst_client; "
              "print(nst_client.Client(sys.argv[1], 'tok').health()['status'])")
    env = {**os.environ, "http_proxy": bad_server.url, "HTTP_PROXY": bad_server.url,
           "no_proxy": "", "NO_PROXY": "", "PYTHONPATH": str(Path(nst_client.__file__).parent)}
    done = subprocess.run([sys.executable, "-c", script, server.url], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
    assert bad_server.seen == []
