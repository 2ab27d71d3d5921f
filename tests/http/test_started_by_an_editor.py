"""The real server as an editor starts it (the flags ``launch.json`` carries): detached, with
no terminal to print to, so its log file is where it says what happened, and nobody stops it,
so it stops itself when idle."""

from __future__ import annotations

import subprocess
import sys

from live_server import LiveServer, start_server


def test_an_idle_server_stops_itself_cleanly_and_logs_why(tmp_path):
    log = tmp_path / "data" / "server.log"
    server = LiveServer(tmp_path / "server", ["--idle-timeout", "0.05", "--log-file", str(log)])
    server.start()
    try:
        assert server.process.wait(timeout=120) == 0
    finally:
        server.kill()
    lines = log.read_text().splitlines()
    assert f"listening on {server.url}" in lines[0]
    assert "no request and no job for 3 seconds: stopping (--idle-timeout)" in lines[-2]
    assert "stopped; unfinished jobs run again at the next start" in lines[-1]
    assert (log.stat().st_mode & 0o777) == 0o600


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
