"""The shared plugin client against a tiny fake server on loopback (stdlib http.server).

The fake parses what the client really sends (multipart parts, headers) and answers like the
contract in CONTRACTS.md, so these tests break when the client's wire format or its error
mapping breaks.
"""

from __future__ import annotations

import json
import sys
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

import nst_client
from nst_client import (
    ApiError,
    AuthError,
    Client,
    JobCancelled,
    JobFailed,
    QueueFull,
    ServerGone,
    ServerUnavailable,
)

TOKEN = "s3cret"


class FakeServer:
    """Records requests and plays scripted job states; one instance per test."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.states: dict[str, list[dict]] = {}
        self.cancelled: list[str] = []
        self.preview_png: bytes | None = None
        self.result_bytes = b"RESULT"
        self.queue_full = False
        self.on_status = None  # hook called after each status answer
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status, body, ctype="application/json", headers=()):
                data = json.dumps(body).encode() if ctype == "application/json" else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers:
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status, code, message, headers=()):
                self._send(status, {"error": {"code": code, "message": message}}, headers=headers)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(
                    {
                        "method": method,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if self.path == "/v1/health":
                    return self._send(200, {"status": "ok", "device": "cpu", "queue_length": 0})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._error(401, "unauthorized", "Missing or wrong token.")
                parts = self.path.split("?")[0].strip("/").split("/")
                if method == "POST" and parts == ["v1", "jobs"]:
                    if fake.queue_full:
                        return self._error(
                            429, "queue_full", "Queue is full.", [("Retry-After", "7")]
                        )
                    return self._send(202, {"id": "job-1", "state": "queued", "urls": {}})
                job_id = parts[2]
                if job_id not in fake.states:
                    return self._error(404, "not_found", f"No job {job_id}.")
                if method == "DELETE":
                    fake.cancelled.append(job_id)
                    fake.states[job_id] = [{"id": job_id, "state": "cancelled"}]
                    return self._send(200, fake.states[job_id][0])
                if len(parts) == 3:
                    states = fake.states[job_id]
                    status = states.pop(0) if len(states) > 1 else states[0]
                    self._send(200, status)
                    if fake.on_status:
                        fake.on_status()
                    return None
                if parts[3] == "preview":
                    if fake.preview_png is None:
                        return self._error(404, "no_preview", "No preview yet.")
                    return self._send(200, fake.preview_png, "image/png")
                if parts[3] == "result":
                    return self._send(200, fake.result_bytes, "application/octet-stream")
                return self._error(404, "not_found", "No such route.")

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.stop()


@pytest.fixture
def client(server):
    return Client(server.url, TOKEN, timeout=5, token_source="a test")


@pytest.fixture
def style(tmp_path):
    path = tmp_path / "starry night.png"
    path.write_bytes(b"\x89PNG fake style bytes")
    return path


def dead_url() -> str:
    """A loopback URL on which nothing listens (port freshly closed)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}"


def multipart(request: dict) -> dict[str, list]:
    """Parse a recorded multipart request into {name: [(filename, content_type, bytes)]}."""
    head = f"Content-Type: {request['headers']['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request["body"])
    assert message.is_multipart()
    parts: dict[str, list] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.setdefault(name, []).append(
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        )
    return parts


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
    assert Client(server.url, None).health()["status"] == "ok"
    assert "Authorization" not in server.requests[-1]["headers"]


def test_dead_server_is_unavailable_with_hint():
    with pytest.raises(ServerUnavailable, match="nst-server") as info:
        Client(dead_url(), TOKEN, timeout=2).health()
    assert not isinstance(info.value, ServerGone)


def test_submit_raw_sends_layout_pixels_styles_mask_and_settings(server, client, style):
    pixels = bytes(range(64))  # 4x2 px, 4 channels, 2 bytes per sample
    mask = bytes([0, 255, 255, 0, 0, 255, 255, 0])
    job = client.submit_raw(
        pixels,
        4,
        2,
        "BGRA",
        "u16",
        [style, style],
        {"preset": "draft"},
        style_weights=[1, 3],
        mask=mask,
    )
    assert job == "job-1"
    request = server.requests[-1]
    assert (request["method"], request["path"]) == ("POST", "/v1/jobs")
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    parts = multipart(request)
    assert json.loads(parts["layout"][0][2]) == {
        "width": 4,
        "height": 2,
        "channels": "BGRA",
        "sample": "u16",
    }
    assert parts["content"][0][2] == pixels
    assert [p[2] for p in parts["style"]] == [style.read_bytes()] * 2
    assert parts["style"][0][:2] == ("starry night.png", "image/png")
    assert parts["mask"][0][2] == mask
    assert json.loads(parts["settings"][0][2]) == {"preset": "draft"}
    assert json.loads(parts["style_weights"][0][2]) == [1.0, 3.0]


def test_submit_file_sends_the_file_without_layout(server, client, style, tmp_path):
    content = tmp_path / "cat.jpg"
    content.write_bytes(b"\xff\xd8 jpeg bytes")
    client.submit_file(content, [style])
    parts = multipart(server.requests[-1])
    assert "layout" not in parts and "settings" not in parts and "mask" not in parts
    assert parts["content"][0] == ("cat.jpg", "image/jpeg", content.read_bytes())


def test_missing_style_file_is_explained(client, tmp_path):
    with pytest.raises(nst_client.NSTClientError, match="Choose another file"):
        client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [tmp_path / "gone.png"])


def test_wrong_token_says_where_the_token_lives(server, style):
    bad = Client(server.url, "wrong", token_source="the NST_TOKEN environment variable")
    with pytest.raises(AuthError) as info:
        bad.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style])
    message = str(info.value)
    assert "NST_TOKEN" in message and "connection.json" in message


def test_full_queue_reports_retry_after(server, client, style):
    server.queue_full = True
    with pytest.raises(QueueFull) as info:
        client.submit_raw(b"\0" * 4, 1, 1, "RGBA", "u8", [style])
    assert info.value.retry_after == 7.0 and info.value.status == 429


def test_api_errors_keep_code_and_message(client):
    with pytest.raises(ApiError) as info:
        client.status("nope")
    assert (info.value.status, info.value.code, str(info.value)) == (
        404,
        "not_found",
        "No job nope.",
    )


def test_preview_none_until_available_then_png(server, client):
    server.states["j"] = [{"id": "j", "state": "running"}]
    assert client.preview("j", 128) is None
    server.preview_png = b"\x89PNG preview"
    assert client.preview("j", 128) == b"\x89PNG preview"
    assert server.requests[-1]["path"] == "/v1/jobs/j/preview?size=128"


def test_result_returns_body(server, client):
    server.states["j"] = [{"id": "j", "state": "done"}]
    assert client.result("j") == b"RESULT"


# --------------------------------------------------------------------------------------- wait
def test_wait_reports_progress_until_done(server, client):
    server.states["j"] = [
        {"id": "j", "state": "queued", "queue_position": 1},
        {"id": "j", "state": "running", "percent": 50},
        {"id": "j", "state": "done", "percent": 100},
    ]
    seen = []
    final = client.wait("j", on_progress=lambda s: seen.append(s["state"]), poll_interval=0.01)
    assert final["state"] == "done"
    assert seen == ["queued", "running", "done"]


def test_wait_raises_job_failed_with_server_message(server, client):
    server.states["j"] = [{"id": "j", "state": "failed", "error": "Style image is corrupt."}]
    with pytest.raises(JobFailed, match=r"Style image is corrupt\.") as info:
        client.wait("j", poll_interval=0.01)
    assert info.value.job_id == "j"


def test_wait_cancels_on_request(server, client):
    server.states["j"] = [{"id": "j", "state": "running"}]
    with pytest.raises(JobCancelled):
        client.wait("j", should_cancel=lambda: True, poll_interval=0.01)
    assert server.cancelled == ["j"]
    assert any(r["method"] == "DELETE" and r["path"] == "/v1/jobs/j" for r in server.requests)


def test_server_gone_mid_job_keeps_the_job_id(server, client):
    server.states["j"] = [{"id": "j", "state": "running"}]
    server.on_status = lambda: threading.Thread(target=server.stop).start()
    with pytest.raises(ServerGone) as info:
        client.wait("j", poll_interval=0.01, gone_after=0.2)
    assert info.value.job_id == "j"
    assert "j" in str(info.value) and "nst-server" in str(info.value)


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
