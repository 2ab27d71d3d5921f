"""Clients that hold on, pile up or send what they should not: the server keeps answering
everyone else, and frees what such clients held."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from conftest import LONG, get, png_bytes, rgba_pixels, submit
from live_server import LiveServer


def cancel(server: LiveServer, job_id: str) -> None:
    requests.delete(f"{server.url}/v1/jobs/{job_id}", headers=server.headers(), timeout=10)


def open_stream(server: LiveServer, job: dict) -> requests.Response:
    return requests.get(f"{server.url}{job['urls']['events']}", headers=server.headers(),
                        stream=True, timeout=10)


def test_event_streams_are_capped_and_freed_when_their_clients_go(live_server, style_png):
    limit = get(live_server, "/v1/health").json()["limits"]["max_event_streams"]
    content = png_bytes(rgba_pixels())
    # The second job waits behind the first, so its status never changes: only keep-alive
    # comments can tell the server that a client has gone.
    running, waiting = (submit(live_server, content, style_png, settings=LONG).json()
                        for _ in range(2))
    streams = []
    try:
        streams = [open_stream(live_server, waiting) for _ in range(limit)]
        assert all(stream.status_code == 200 for stream in streams)
        refused = open_stream(live_server, waiting)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_streams"
        assert "Retry-After" in refused.headers
        started = time.monotonic()
        assert requests.get(f"{live_server.url}/v1/health", timeout=1).status_code == 200
        assert time.monotonic() - started < 1.0

        for stream in streams:  # the clients go away without a word
            stream.close()
        deadline = time.monotonic() + 20
        while (again := open_stream(live_server, waiting)).status_code == 429:
            assert time.monotonic() < deadline, "the streams of closed clients were not freed"
            time.sleep(0.5)
        assert again.status_code == 200
        again.close()
    finally:
        for stream in streams:
            stream.close()
        cancel(live_server, waiting["id"])
        cancel(live_server, running["id"])


@pytest.mark.parametrize("origin", ["http://evil.example", "null",
                                    "http://localhost.evil.example"])
def test_requests_from_a_foreign_web_page_are_refused(live_server, style_png, origin):
    before = get(live_server, "/v1/health").json()["queue_length"]
    answer = submit(live_server, png_bytes(rgba_pixels()), style_png,
                    headers={**live_server.headers(), "Origin": origin})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "bad_origin"
    assert get(live_server, "/v1/health").json()["queue_length"] <= before
    health = requests.get(f"{live_server.url}/v1/health", headers={"Origin": origin},
                          timeout=10)
    assert health.status_code == 403


def test_a_request_from_the_servers_own_origin_is_served(live_server):
    answer = requests.get(f"{live_server.url}/v1/health", headers={"Origin": live_server.url},
                          timeout=10)
    assert answer.status_code == 200


def test_a_body_over_the_upload_limit_is_refused_before_it_is_sent(live_server):
    """Only the headers are sent: a server that waited for the body would not answer."""
    limit = get(live_server, "/v1/health").json()["limits"]["max_upload_bytes"]
    host, port = "127.0.0.1", live_server.port
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           f"Content-Type: text/plain\r\nContent-Length: {limit + 1}\r\n"
                           f"\r\n".encode())
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer
