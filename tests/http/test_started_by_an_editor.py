"""The real server as an editor starts it (the flags ``launch.json`` carries): detached, with
no terminal to print to, so its log file is where it says what happened, and nobody stops it,
so it stops itself when idle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from live_server import START_TIMEOUT_S, start_server


def test_the_recorded_command_starts_a_server_the_plugins_find_which_stops_when_idle(
        tmp_path):
    """The whole server side of an editor's start: ``install-plugin`` records the command, a
    launcher runs it detached (as the plugins do), the server is found through
    ``connection.json``, and it stops by itself once idle, saying so in the recorded log."""
    home = tmp_path / "home"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")},
           "HOME": str(home)}
    subprocess.run([sys.executable, "-m", "nst_server", "install-plugin", "gimp", "--dest",
                    str(tmp_path / "plug-ins"), "--idle-timeout", "0.2"],
                   check=True, capture_output=True, cwd=tmp_path, env=env)
    record = json.loads((home / ".config/nst-server/launch.json").read_text())
    connection = home / ".config/nst-server/connection.json"
    # --port 0 and --device cpu appended: the default port may be another test's or the
    # user's own server, and this test must not wait for a GPU.
    server = subprocess.Popen(
        [*record["command"], "--port", "0", "--device", "cpu"], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not connection.exists() and server.poll() is None:
            assert time.monotonic() < deadline, "the server never wrote connection.json"
            time.sleep(0.1)
        url = json.loads(connection.read_text())["url"]
        assert requests.get(f"{url}/v1/health", timeout=10).json()["status"] == "ok"
        assert server.wait(timeout=120) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = Path(record["log"]).read_text().splitlines()
    assert f"listening on {url}" in lines[0]
    assert "no request and no job for 12 seconds: stopping (--idle-timeout)" in lines[-2]
    assert "stopped; unfinished jobs run again at the next start" in lines[-1]
    assert (Path(record["log"]).stat().st_mode & 0o777) == 0o600


def test_a_second_server_on_the_same_folder_exits_1_and_its_log_says_why(tmp_path):
    """What a second editor's start meets when the first editor's server is running: it
    must end at once (the plugin then waits for the first server), saying why in the log."""
    log = tmp_path / "server.log"
    with start_server(tmp_path / "first", ["--log-file", str(log)]) as first:
        second = subprocess.run(
            [sys.executable, "-m", "nst_server", "serve", "--port", "0", "--device", "cpu",
             "--data-dir", str(first.data_dir), "--config-dir", str(first.config_dir),
             "--idle-timeout", "30", "--log-file", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, timeout=120)
        assert second.returncode == 1
        last = log.read_text().splitlines()[-1]
        assert "already running on the data folder" in last and first.url in last
