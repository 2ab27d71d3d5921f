"""The queue's promises: cancel works, a full queue says 429, and no accepted job is lost,
not even when the server is killed in the middle of running it."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from conftest import LONG, QUICK, get, png_bytes, rgba_pixels, submit
from live_server import LiveServer, start_server, wait_for
from PIL import Image


@pytest.fixture
def small_queue_server(tmp_path):
    """A server of its own: one job may wait while one runs."""
    with start_server(tmp_path, ["--max-queue", "1"]) as server:
        yield server


def cancel(server: LiveServer, job_id: str) -> requests.Response:
    return requests.delete(f"{server.url}/v1/jobs/{job_id}", headers=server.headers(),
                           timeout=10)


def wait_running(server: LiveServer, job_id: str, iterations: int = 1) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = get(server, f"/v1/jobs/{job_id}").json()
        if status["state"] == "running" and status["iteration"] >= iterations:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ran: {status}")


def test_cancel_a_running_job(live_server, style_png):
    job_id = submit(live_server, png_bytes(rgba_pixels()), style_png, settings=LONG).json()["id"]
    wait_running(live_server, job_id)

    answer = cancel(live_server, job_id)

    assert answer.status_code == 200
    assert answer.json()["state"] == "cancelled"
    time.sleep(0.5)  # the worker stops within one iteration; it must not resurrect the job
    status = get(live_server, f"/v1/jobs/{job_id}").json()
    assert status["state"] == "cancelled"
    assert get(live_server, f"/v1/jobs/{job_id}/result").status_code == 409
    # The worker is free again at once.
    quick = submit(live_server, png_bytes(rgba_pixels()), style_png).json()["id"]
    assert wait_for(live_server, quick, timeout=30)["state"] == "done"


def test_cancel_a_finished_job_changes_nothing(live_server, style_png):
    job_id = submit(live_server, png_bytes(rgba_pixels()), style_png).json()["id"]
    wait_for(live_server, job_id)
    assert cancel(live_server, job_id).json()["state"] == "done"
    assert get(live_server, f"/v1/jobs/{job_id}/result").status_code == 200


def test_full_queue_answers_429_with_retry_after_and_cancel_frees_it(small_queue_server,
                                                                     style_png):
    server, content = small_queue_server, png_bytes(rgba_pixels())
    running = submit(server, content, style_png, settings=LONG).json()["id"]
    wait_running(server, running)
    waiting = submit(server, content, style_png, settings=QUICK).json()["id"]
    status = get(server, f"/v1/jobs/{waiting}").json()
    assert (status["state"], status["queue_position"]) == ("queued", 1)

    started = time.monotonic()
    full = submit(server, content, style_png)
    assert time.monotonic() - started < 5  # an answer, never a hang
    assert full.status_code == 429
    assert full.json()["error"]["code"] == "queue_full"
    assert int(full.headers["Retry-After"]) >= 1
    health = requests.get(f"{server.url}/v1/health", timeout=10).json()
    assert (health["queue_length"], health["running"]) == (1, 1)

    assert cancel(server, waiting).json()["state"] == "cancelled"
    assert submit(server, content, style_png).status_code == 202
    cancel(server, running)


def test_killed_server_reruns_the_job_after_restart_under_the_same_id(tmp_path, style_png):
    pixels = rgba_pixels(seed=11)
    settings = {**QUICK, "initial_iterations": 60}
    server = LiveServer(tmp_path).start()
    try:
        job_id = submit(server, png_bytes(pixels), style_png, settings=settings).json()["id"]
        waiting = submit(server, png_bytes(pixels), style_png).json()["id"]
        wait_running(server, job_id, iterations=5)

        server.kill()  # SIGKILL in the middle of the run
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}/v1/health", timeout=5)
        server.restart()

        status = wait_for(server, job_id, timeout=120)
        assert status["state"] == "done"
        assert status["attempts"] == 2
        result = get(server, f"/v1/jobs/{job_id}/result")
        out = np.asarray(Image.open(io.BytesIO(result.content)))
        np.testing.assert_array_equal(out[..., 3], pixels[..., 3])
        assert wait_for(server, waiting)["state"] == "done"  # the queue survived too
    finally:
        server.stop()


def test_clean_shutdown_keeps_queued_and_running_jobs(tmp_path, style_png):
    server = LiveServer(tmp_path).start()
    try:
        job_id = submit(server, png_bytes(rgba_pixels()), style_png,
                        settings={**QUICK, "initial_iterations": 60}).json()["id"]
        wait_running(server, job_id)
        server.stop()  # SIGTERM
        server.start()
        status = wait_for(server, job_id, timeout=120)
        assert (status["state"], status["attempts"]) == ("done", 1)
    finally:
        server.stop()


def test_a_job_that_keeps_killing_the_server_fails_instead_of_looping(tmp_path, style_png):
    server = LiveServer(tmp_path).start()
    try:
        job_id = submit(server, png_bytes(rgba_pixels()), style_png, settings=LONG).json()["id"]
        for _ in range(3):  # the default max_attempts
            wait_running(server, job_id)
            server.kill()
            server.start()
        status = wait_for(server, job_id, timeout=30)
        assert status["state"] == "failed"
        assert "stopped 3 times" in status["error"]
    finally:
        server.stop()


def test_a_second_server_on_the_same_data_folder_refuses_and_takes_nothing(tmp_path,
                                                                            style_png):
    with start_server(tmp_path / "first") as first:
        job_id = submit(first, png_bytes(rgba_pixels()), style_png, settings=LONG).json()["id"]
        attempts = wait_running(first, job_id)["attempts"]
        second = subprocess.run(
            [sys.executable, "-m", "nst_server", "serve", "--port", "0", "--device", "cpu",
             "--data-dir", str(first.data_dir), "--config-dir", str(tmp_path / "config2")],
            capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert "already running on the data folder" in second.stderr
        assert first.url in second.stderr
        status = get(first, f"/v1/jobs/{job_id}").json()
        assert (status["state"], status["attempts"]) == ("running", attempts)
        cancel(first, job_id)


def test_a_server_that_cannot_listen_starts_no_job(tmp_path, style_png):
    with start_server(tmp_path / "first") as first:
        job_id = submit(first, png_bytes(rgba_pixels()), style_png, settings=LONG).json()["id"]
        wait_running(first, job_id)
        first.kill()  # leaves the job "running" in the store, to be rerun by the next start
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            second = subprocess.run(
                [sys.executable, "-m", "nst_server", "serve", "--device", "cpu",
                 "--port", str(taken.getsockname()[1]), "--data-dir", str(first.data_dir),
                 "--config-dir", str(first.config_dir)],
                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "cannot listen on" in second.stderr
        first.start()
        # One run by the first server, one by its restart; none by the one that could not
        # listen (which would have been a third).
        assert wait_running(first, job_id)["attempts"] == 2
        cancel(first, job_id)
