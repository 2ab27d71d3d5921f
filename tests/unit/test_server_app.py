"""The Flask app in-process (``create_app`` with the stub engine), where a test can set what a
real server fixes: what a client is told when something inside breaks (nothing of the server's
internals may leak into an answer), and event streams with short keep-alive and time limits."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest
from flask import Flask
from PIL import Image
from stub_engine import StubEngine

from nst_server.app import create_app
from nst_server.config import Limits, ServerConfig

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET_PATH = "/home/artist/private/commission.kra"


@pytest.fixture
def engine() -> StubEngine:
    return StubEngine()


@pytest.fixture
def app(tmp_path, engine) -> Iterator[Flask]:
    app = create_app(ServerConfig(data_dir=tmp_path / "data", token=TOKEN,
                                  sweep_interval_s=3600), [engine])
    yield app
    app.extensions["nst"].stop()


def submit(app: Flask) -> str:
    pixels = np.zeros((8, 8, 3), np.uint8)
    answer = app.test_client().post("/v1/jobs", headers=AUTH, data={
        "content": (io.BytesIO(png(pixels)), "c.png"), "style": (io.BytesIO(png(pixels)), "s.png"),
        "settings": json.dumps({"preset": "draft", "size": 32, "scales": 1}),
    })
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_500_says_only_internal_error_and_an_id_the_log_also_has(app, caplog):
    def broken() -> dict:
        raise RuntimeError(f"cannot open {SECRET_PATH}")

    app.extensions["nst"].health = broken
    with caplog.at_level(logging.ERROR, logger="nst_server.http_errors"):
        answer = app.test_client().get("/v1/health")
    assert answer.status_code == 500
    error = answer.get_json()["error"]
    assert error["code"] == "internal_error"
    assert SECRET_PATH not in answer.get_data(as_text=True)
    assert "RuntimeError" not in answer.get_data(as_text=True)
    assert error["message"].startswith("internal error (id ")
    incident = error["incident"]
    assert incident in error["message"]
    logged = [record for record in caplog.records if incident in record.getMessage()]
    assert logged and SECRET_PATH in str(logged[0].exc_info[1])


def test_a_crashed_job_fails_without_the_exception_text(app, engine, monkeypatch, caplog):
    def crash(*args, **kwargs):
        raise OSError(f"[Errno 13] Permission denied: '{SECRET_PATH}'")

    monkeypatch.setattr(engine, "stylize", crash)
    client = app.test_client()
    job_id = submit(app)
    deadline = time.monotonic() + 10
    with caplog.at_level(logging.ERROR, logger="nst_server.worker"):
        while (status := client.get(f"/v1/jobs/{job_id}", headers=AUTH).get_json()
               )["state"] != "failed":
            assert time.monotonic() < deadline, status
            time.sleep(0.01)
    assert SECRET_PATH not in status["error"] and "Errno" not in status["error"]
    assert job_id in status["error"]
    assert any(job_id in record.getMessage() for record in caplog.records)


def test_an_idle_event_stream_sends_keep_alives_and_ends_in_time(tmp_path, engine):
    config = ServerConfig(data_dir=tmp_path / "data", token=TOKEN, sweep_interval_s=3600,
                          event_keepalive_s=0.5, event_max_s=3.0)
    app = create_app(config, [engine], start=False)  # no worker: the job stays queued
    try:
        job_id = submit(app)
        started = time.monotonic()
        stream = app.test_client().get(f"/v1/jobs/{job_id}/events", headers=AUTH,
                                       buffered=False)
        chunks = list(stream.response)
        stream.close()
        lasted = time.monotonic() - started
    finally:
        app.extensions["nst"].store.close()
    text = b"".join(chunks).decode()
    assert text.count("event: status") == 1  # a queued job's status does not change
    assert text.count(": keep-alive\n\n") >= 3
    assert 3.0 <= lasted < 5.0


def test_event_streams_past_the_limit_wait_for_a_free_one(tmp_path, engine):
    config = ServerConfig(data_dir=tmp_path / "data", token=TOKEN, sweep_interval_s=3600,
                          limits=Limits(max_event_streams=1))
    app = create_app(config, [engine], start=False)
    try:
        job_id = submit(app)
        client = app.test_client()
        first = client.get(f"/v1/jobs/{job_id}/events", headers=AUTH, buffered=False)
        second = client.get(f"/v1/jobs/{job_id}/events", headers=AUTH, buffered=False)
        assert (first.status_code, second.status_code) == (200, 429)
        assert second.get_json()["error"]["code"] == "too_many_streams"
        first.close()  # never read: closing alone frees its place
        third = client.get(f"/v1/jobs/{job_id}/events", headers=AUTH, buffered=False)
        assert third.status_code == 200
        third.close()
    finally:
        app.extensions["nst"].store.close()
