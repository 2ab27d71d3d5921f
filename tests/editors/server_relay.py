"""The host half of starting the real server from a plugin inside the chroot.

A plugin's launcher runs launch.json's command. Inside the chroot that command is
``inside/nst_server_relay.py``, which drops a start request into a folder of the chroot; this
relay, on the host, answers each request with the real ``python -m nst_server serve`` of the
test's environment, with the config folder of the editor's HOME (so the plugin finds its
``connection.json``) and its output appended to the log that launch.json names. Everything on
the plugin's side (reading launch.json, spawning, waiting for health, the log on failure) is
the real code; only the last hop, chroot to host, is this stand-in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RELAY_SCRIPT = Path(__file__).resolve().parent / "inside" / "nst_server_relay.py"
CHROOT_PYTHON = "/usr/bin/python3"
LAUNCH_JSON = ".config/nst-server/launch.json"  # relative to the editor's HOME


class ServerRelay:
    """Starts one host server per request from inside ``root``; :meth:`close` stops them all."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.data_dir = data_dir
        self.host_folder = Path(tempfile.mkdtemp(prefix="nst-relay-", dir=root / "tmp"))
        os.chmod(self.host_folder, 0o755)
        self.folder = "/tmp/" + self.host_folder.name  # the same folder, seen from inside
        shutil.copy2(RELAY_SCRIPT, self.host_folder / RELAY_SCRIPT.name)
        self.servers: list[subprocess.Popen] = []  # one per start request: the tests count
        self.relay_pids: list[str] = []
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="server-relay", daemon=True)
        self._watcher.start()

    @property
    def log(self) -> Path:
        """The server log launch.json names, on the host."""
        return self.host_folder / "server.log"

    def launch_json(self) -> str:
        """A launch.json whose command is the relay, for the editor's HOME."""
        command = [CHROOT_PYTHON, f"{self.folder}/{RELAY_SCRIPT.name}", self.folder]
        return json.dumps({"version": 1, "command": command, "log": f"{self.folder}/server.log"})

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for request in sorted(self.host_folder.glob("start-*.json")):
                relay_pid = request.stem.removeprefix("start-")
                config_inside = json.loads(request.read_text())["config_dir"]
                request.unlink()
                self._serve(relay_pid, self.root / config_inside.lstrip("/"))

    def _serve(self, relay_pid: str, config_dir: Path) -> None:
        with open(self.log, "ab") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "nst_server", "serve", "--port", "0", "--device", "cpu",
                 "--data-dir", str(self.data_dir), "--config-dir", str(config_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.servers.append(server)
        self.relay_pids.append(relay_pid)

        def report_exit() -> None:  # the relay inside exits with the server's status
            code = server.wait()
            (self.host_folder / f"exit-{relay_pid}").write_text(str(code))

        threading.Thread(target=report_exit, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._watcher.join()
        for server in self.servers:
            with contextlib.suppress(ProcessLookupError):
                server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        # Each relay inside sees its exit file within 0.2 s and ends (the chroot shares the
        # host's process ids); wait for that, so nothing of the test lingers in the chroot.
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in self.relay_pids):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        shutil.rmtree(self.host_folder, ignore_errors=True)
