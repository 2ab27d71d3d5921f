"""Starting the server from an editor (plugins/nst_launcher.py), with a fake server command.

The fake is a tiny Python script run exactly as launch.json's command is run: detached, its
output appended to the log. It answers ``/v1/health`` the way the server does and writes
``connection.json`` once it listens, or fails the ways a real start fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
sys.path.insert(0, str(PLUGINS))

import nst_launcher  # noqa: E402
from nst_client import ServerUnavailable  # noqa: E402

# Listens on a free port, answers GET /v1/health, writes connection.json, writes its session id
# to starts.txt (beside this script) for each start, and exits 3 when another one already
# started (a stand-in for the server's data-folder lock), after saying so in its log.
FAKE_SERVER = textwrap.dedent("""\
    import http.server, json, os, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    config, delay = sys.argv[1], float(sys.argv[2])
    try:
        os.close(os.open(os.path.join(here, "owner"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        print("another server holds the data folder", flush=True)
        sys.exit(3)
    with open(os.path.join(here, "starts.txt"), "a") as f:
        f.write("%d\\n" % os.getsid(0))
    print("loading VGG-19", flush=True)
    time.sleep(delay)

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "ok", "device": "fake"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    url = "http://127.0.0.1:%d" % server.server_address[1]
    with open(os.path.join(config, "connection.json"), "w") as f:
        json.dump({"url": url, "token": "t"}, f)
    server.timeout = 0.2
    while not os.path.exists(os.path.join(here, "stop")):
        server.handle_request()
""")


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose config folder (where launch.json lives) is under tmp_path."""
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.fixture
def fake(tmp_path: Path, home: dict[str, str]):
    """Writes launch.json for the fake server; yields a function (delay, command) -> Path of the
    fake's folder. Every fake started is told to stop at the end."""
    folder = tmp_path / "fake"
    folder.mkdir()
    script = folder / "server.py"
    script.write_text(FAKE_SERVER)
    config = nst_launcher.launch_file(home).parent
    config.mkdir(parents=True)

    def write(delay: float = 0.0, command: list[str] | None = None) -> Path:
        command = command or [sys.executable, str(script), str(config), str(delay)]
        launch = {"version": 1, "command": command, "log": str(folder / "server.log")}
        nst_launcher.launch_file(home).write_text(json.dumps(launch))
        return folder

    yield write
    (folder / "stop").touch()


def _starts(folder: Path) -> int:
    path = folder / "starts.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_running_server_is_used_and_none_is_started(fake, home):
    folder = fake()
    first = nst_launcher.ensure_server(env=home, poll=0.05)
    seen: list[str] = []
    again = nst_launcher.ensure_server(on_status=seen.append, env=home, poll=0.05)
    assert again.url == first.url
    assert seen == [], "a running server needs no start, so no 'Starting' either"
    assert _starts(folder) == 1


def test_starts_the_server_says_so_and_waits_for_its_health(fake, home):
    folder = fake(delay=1.0)
    assert nst_launcher.reachable_client(home) is None
    seen: list[str] = []
    client = nst_launcher.ensure_server(on_status=seen.append, env=home, poll=0.05)
    assert seen == [nst_launcher.STARTING]
    assert client.health()["device"] == "fake"
    assert "loading VGG-19" in (folder / "server.log").read_text()  # its output is logged


def test_the_server_runs_in_a_session_of_its_own(fake, home):
    """A GIMP plug-in process ends after each run, and GIMP may kill it: the server it started
    must be out of its session and process group, so that neither takes the server along."""
    folder = fake()
    nst_launcher.ensure_server(env=home, poll=0.05)
    [session] = (folder / "starts.txt").read_text().split()
    assert int(session) != os.getsid(0)


def test_two_editors_starting_at_once_get_one_server(fake, home):
    folder = fake(delay=1.0)
    clients: list = []
    errors: list = []

    def press_stylize() -> None:
        try:
            clients.append(nst_launcher.ensure_server(env=home, poll=0.05))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=press_stylize) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len({client.url for client in clients}) == 1
    assert _starts(folder) == 1


def test_a_second_server_refused_by_the_data_folder_lock_waits_for_the_first(fake, home):
    """A server started some other way (by hand) holds the folder: ours exits, and the
    launcher then finds the one that holds it instead of reporting a failure."""
    folder = fake(delay=1.5)
    config = nst_launcher.launch_file(home).parent
    by_hand = subprocess.Popen([sys.executable, str(folder / "server.py"), str(config), "1.5"])
    try:
        while not (folder / "starts.txt").exists():  # it holds the folder, and loads
            time.sleep(0.05)
        client = nst_launcher.ensure_server(env=home, poll=0.05)
        assert client.health()["device"] == "fake"
        assert "another server holds the data folder" in (folder / "server.log").read_text()
        assert _starts(folder) == 1
    finally:
        (folder / "stop").touch()
        by_hand.wait(10)


def test_a_server_that_dies_shows_the_end_of_its_log_and_the_command(fake, home, monkeypatch):
    monkeypatch.setattr(nst_launcher, "OTHER_SERVER_GRACE_S", 0.2)
    crash = "import sys; print('old line'); print('ImportError: no module torch'); sys.exit(1)"
    fake(command=[sys.executable, "-c", crash])
    with pytest.raises(nst_launcher.StartFailed) as failure:
        nst_launcher.ensure_server(env=home, poll=0.05)
    message = str(failure.value)
    assert "exit status 1" in message
    assert "ImportError: no module torch" in failure.value.log_tail
    assert "ImportError: no module torch" in message
    assert sys.executable in message  # the command, to run by hand


def test_only_this_starts_log_lines_are_shown(fake, home, monkeypatch):
    monkeypatch.setattr(nst_launcher, "OTHER_SERVER_GRACE_S", 0.2)
    folder = fake(command=[sys.executable, "-c", "import sys; print('now'); sys.exit(2)"])
    (folder / "server.log").write_text("an old failure from yesterday\n")
    with pytest.raises(nst_launcher.StartFailed) as failure:
        nst_launcher.ensure_server(env=home, poll=0.05)
    assert failure.value.log_tail == "now"


def test_a_command_that_cannot_run_says_so(fake, home):
    fake(command=["/nonexistent/python", "-m", "nst_server"])
    with pytest.raises(nst_launcher.LaunchError, match="Cannot run the server's command"):
        nst_launcher.ensure_server(env=home, poll=0.05)


def test_a_server_that_never_answers_times_out(fake, home):
    folder = fake(command=[sys.executable, "-c", "import time; time.sleep(30)"])
    with pytest.raises(nst_launcher.StartFailed, match="did not answer in time"):
        nst_launcher.ensure_server(env=home, timeout=0.5, poll=0.05)
    assert folder.exists()


@pytest.mark.parametrize(
    "content",
    ["", "{not json", json.dumps({"version": 2, "command": ["x"], "log": "l"}),
     json.dumps({"version": 1, "command": [], "log": "l"}),
     json.dumps({"version": 1, "command": ["x", 3], "log": "l"}),
     json.dumps({"version": 1, "command": ["x"]}), json.dumps(["x"])],
)
def test_a_bad_launch_file_says_to_reinstall_the_plugin(home, content):
    path = nst_launcher.launch_file(home)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(nst_launcher.NotInstalled, match="install-plugin"):
        nst_launcher.ensure_server(env=home)


def test_no_launch_file_says_how_to_get_one(home):
    with pytest.raises(nst_launcher.NotInstalled, match="install-plugin") as failure:
        nst_launcher.ensure_server(env=home)
    assert isinstance(failure.value, ServerUnavailable)  # the dialogs' "not running" errors


def test_a_server_named_by_hand_is_never_replaced_by_a_local_one(fake, home):
    folder = fake()
    env = {**home, "NST_SERVER_URL": "http://127.0.0.1:9"}
    # The documented error, which says to start that server.
    documented = r"Cannot reach .* http://127\.0\.0\.1:9 .* `nst-server`"
    with pytest.raises(ServerUnavailable, match=documented):
        nst_launcher.ensure_server(env=env)
    assert _starts(folder) == 0


def test_flatpak_without_permission_shows_the_command_and_the_override(fake, home, tmp_path):
    folder = fake()
    info = tmp_path / "flatpak-info"
    info.write_text("[Application]\nname=org.kde.krita\n")
    spec = nst_launcher.read_launch_spec(nst_launcher.launch_file(home))
    with pytest.raises(nst_launcher.SandboxedEditor) as failure:
        nst_launcher.host_command(spec, env={**home, "FLATPAK_ID": "org.kde.krita"},
                                  info_file=info)
    message = str(failure.value)
    assert spec.shell_text() in message
    assert "flatpak override --user --talk-name=org.freedesktop.Flatpak org.kde.krita" in message
    assert failure.value.command == list(spec.command)
    assert _starts(folder) == 0


def test_flatpak_allowed_to_talk_to_flatpak_starts_it_on_the_host(fake, home, tmp_path):
    fake()
    info = tmp_path / "flatpak-info"
    info.write_text("[Application]\nname=org.gimp.GIMP\n\n"
                    "[Session Bus Policy]\norg.freedesktop.Flatpak=talk\n")
    spec = nst_launcher.read_launch_spec(nst_launcher.launch_file(home))
    command = nst_launcher.host_command(spec, env={**home, "FLATPAK_ID": "org.gimp.GIMP"},
                                        info_file=info)
    assert command == ["flatpak-spawn", "--host", *spec.command]


def test_outside_flatpak_the_command_runs_as_written(fake, home, tmp_path):
    fake()
    spec = nst_launcher.read_launch_spec(nst_launcher.launch_file(home))
    assert nst_launcher.host_command(spec, env=home, info_file=tmp_path / "none") == list(
        spec.command)
