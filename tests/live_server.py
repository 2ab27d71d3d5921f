"""The real ``nst-server`` as a child process on a free loopback port, for tests and benchmarks.

Tests talk to it exactly as the plugins and scripts do: over HTTP, with the token it wrote to
its own config folder. Each server gets its own data and config folders, so tests never see
the user's jobs or token, and a test may SIGKILL it and start it again on the same data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

READY = re.compile(r"nst-server listening on (http://\S+)")
START_TIMEOUT_S = 120.0


class LiveServer:
    """A running server; ``url`` and ``token`` are what a client needs."""

    def __init__(self, folder: Path, options: Sequence[str] = ()) -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.config_dir = folder / "config"
        self.options = list(options)
        self.url = ""
        self.token = ""
        self.log_path = folder / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, port: int = 0) -> LiveServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a")  # noqa: SIM115 - the child writes to it until it stops
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nst_server", "serve", "--port", str(port), "--device", "cpu",
             "--data-dir", str(self.data_dir), "--config-dir", str(self.config_dir),
             *self.options],
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self.url = self._await_ready()
        self.token = json.loads((self.config_dir / "connection.json").read_text())["token"]
        return self

    def _await_ready(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            if match := READY.search(line):
                return match.group(1)
        self.kill()
        raise RuntimeError(f"nst-server did not start; its log:\n{self.log_path.read_text()}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to tidy up, like a crash or a power cut."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        self._end(signal.SIGTERM)

    def restart(self) -> LiveServer:
        """Start again on the same port, data and token, after :meth:`kill` or :meth:`stop`."""
        port = self.port
        self.stop()
        return self.start(port)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def start_server(folder: Path, options: Sequence[str] = ()) -> Iterator[LiveServer]:
    server = LiveServer(Path(folder), options).start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(server: LiveServer, job_id: str, states: Sequence[str] = ("done", "failed",
             "cancelled"), timeout: float = 120.0) -> dict:
    """Poll a job until it reaches one of ``states``; returns its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(f"{server.url}/v1/jobs/{job_id}", headers=server.headers(),
                              timeout=10).json()
        if status.get("state") in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s: {status}")
