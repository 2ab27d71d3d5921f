"""The idle time: what counts as use (requests from clients, jobs queued or running), and the
watcher that stops a server nobody uses."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from flask import Flask
from PIL import Image
from stub_engine import StubEngine

from nst_server.app import create_app
from nst_server.config import ServerConfig
from nst_server.idle import Activity, stop_when_idle

TOKEN = "t0ken"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_time_counts_from_the_last_touch():
    clock = FakeClock()
    activity = Activity(lambda: False, clock)
    clock.now += 90
    assert activity.idle_for() == 90
    activity.touch()
    clock.now += 5
    assert activity.idle_for() == 5


def test_a_job_keeps_the_server_in_use_for_as_long_as_it_lasts():
    clock, busy = FakeClock(), [True]
    activity = Activity(lambda: busy[0], clock)
    clock.now += 3600
    assert activity.idle_for() == 0
    busy[0] = False
    clock.now += 10
    assert activity.idle_for() == 10  # counted from the end of the job, not its start


def test_the_watcher_stops_an_idle_server_once():
    stopped = threading.Event()
    calls = []

    def stop() -> None:
        calls.append(1)
        stopped.set()

    clock = FakeClock()
    activity = Activity(lambda: False, clock)
    clock.now += 61
    halt = threading.Event()
    watcher = stop_when_idle(activity, 0.04, stop, halt)
    assert stopped.wait(30)
    watcher.join(30)
    assert calls == [1] and not watcher.is_alive()


def test_the_watcher_ends_without_stopping_when_the_server_stops_first():
    halt = threading.Event()
    calls = []
    watcher = stop_when_idle(Activity(lambda: True), 0.04, lambda: calls.append(1), halt)
    halt.set()
    watcher.join(30)
    assert not watcher.is_alive() and calls == []


# ------------------------------------------------------------------------------ in the app
@pytest.fixture
def app(tmp_path) -> Iterator[Flask]:
    # start=False: no worker takes jobs, so a submitted job stays queued.
    app = create_app(ServerConfig(data_dir=tmp_path / "data", token=TOKEN,
                                  sweep_interval_s=3600), [StubEngine()], start=False)
    yield app
    service = app.extensions["nst"]
    service.store.close()  # never started, so there is nothing else to stop
    service.data_lock.release()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_client_requests_and_queued_jobs_count_as_use_but_web_pages_do_not(app):
    service = app.extensions["nst"]
    clock = FakeClock()
    service.activity = Activity(service.busy, clock)
    client = app.test_client()
    clock.now += 100
    assert client.get("/v1/health").status_code == 200
    assert service.activity.idle_for() == 0

    clock.now += 100
    refused = client.get("/v1/health", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert service.activity.idle_for() == 100  # a web page knocking keeps nothing alive

    answer = client.post("/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}, data={
        "content": (io.BytesIO(png()), "c.png"), "style": (io.BytesIO(png()), "s.png"),
        "settings": json.dumps({"preset": "draft", "size": 32, "scales": 1})})
    assert answer.status_code == 202
    clock.now += 7200
    assert service.busy() and service.activity.idle_for() == 0
