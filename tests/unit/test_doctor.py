"""``nst-server doctor``, in a temporary HOME: each check finds what is there and says what to
do when it is a problem."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from nst_server import cli, doctor, launch
from nst_server.doctor import NOTE, OK, PROBLEM
from nst_server.plugin_install import (
    enable_krita_plugin,
    install_plugin,
    krita_plugin_enabled,
)
from nst_server.plugins.nst_launcher import LaunchSpec

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home)}


def home_of(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


def levels(findings: list[doctor.Finding]) -> list[tuple[str, str]]:
    return [(finding.topic, finding.level) for finding in findings]


# ------------------------------------------------------------------------------ folders
def test_a_folder_not_made_yet_is_fine_if_it_can_be(tmp_path):
    finding = doctor.check_folder("data folder", tmp_path / "not" / "yet")
    assert finding.level == OK and "made at the server's first start" in finding.found


def test_a_folder_open_to_others_is_noted_and_a_file_in_its_place_is_a_problem(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    finding = doctor.check_folder("config folder", folder)
    assert finding.level == NOTE and "755" in finding.found and "700" in finding.fix
    folder.chmod(0o700)
    assert doctor.check_folder("config folder", folder).level == OK
    file = tmp_path / "data"
    file.write_text("")
    finding = doctor.check_folder("data folder", file)
    assert finding.level == PROBLEM and "is a file" in finding.found


@pytest.mark.skipif(AS_ROOT or os.name == "nt", reason="root may write anywhere")
def test_a_folder_that_is_not_yours_is_a_problem(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        finding = doctor.check_folder("data folder", folder)
    finally:
        folder.chmod(0o700)
    assert finding.level == PROBLEM and "chown" in finding.fix


# ------------------------------------------------------------------------------ port
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_free_port_is_ok_and_a_foreign_listener_is_a_problem():
    assert doctor.check_port(free_port()).level == OK
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        finding = doctor.check_port(taken.getsockname()[1])
    assert finding.level == PROBLEM and "another program" in finding.found
    assert "--port" in finding.fix


def test_our_own_server_on_the_port_is_ok():
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "version": "9.9", "device": "cpu"}).encode()
            self.send_response(200 if self.path == "/v1/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        finding = doctor.check_port(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
    assert finding.level == OK and "our server answers there (version 9.9" in finding.found


def test_the_port_checked_is_the_one_the_server_last_wrote(tmp_path):
    assert doctor.configured_port(tmp_path) == 8765
    (tmp_path / "connection.json").write_text('{"url": "http://127.0.0.1:9123", "token": "t"}')
    assert doctor.configured_port(tmp_path) == 9123
    (tmp_path / "connection.json").write_text('{"url": 5}')
    assert doctor.configured_port(tmp_path) == 8765


# ------------------------------------------------------------------------------ plugins
def test_krita_plugin_missing_installed_switched_off_and_stale(env):
    [missing] = doctor.check_krita(env)
    assert missing.level == NOTE and "install-plugin krita" in missing.fix

    install_plugin("krita", env=env, platform="linux", flatpak=False)
    assert levels(doctor.check_krita(env)) == [("krita plugin", OK), ("krita enabled", OK)]

    kritarc = home_of(env) / ".config/kritarc"
    kritarc.write_text(kritarc.read_text().replace("=true", "=false"))
    found = doctor.check_krita(env)
    assert levels(found)[-1] == ("krita enabled", PROBLEM)
    assert "Python Plugin Manager" in found[-1].fix

    enable_krita_plugin(kritarc)
    client = home_of(env) / ".local/share/krita/pykrita/neural_style_transfer/nst_client.py"
    client.write_text("# an older client\n")
    stale = [f for f in doctor.check_krita(env) if f.level == NOTE]
    assert len(stale) == 1 and "nst_client.py" in stale[0].found


def test_kritarc_switch_is_read_from_the_python_section_only(tmp_path):
    kritarc = tmp_path / "kritarc"
    assert not krita_plugin_enabled(kritarc)
    kritarc.write_text("[other]\nenable_neural_style_transfer=true\n[python]\nenable_x=true\n")
    assert not krita_plugin_enabled(kritarc)
    enable_krita_plugin(kritarc)
    assert krita_plugin_enabled(kritarc)


def test_gimp_plugin_per_profile(env):
    [no_gimp] = doctor.check_gimp(env)
    assert no_gimp.level == NOTE and "start GIMP 3 once" in no_gimp.fix

    for version in ("3.0", "3.2"):
        (home_of(env) / ".config/GIMP" / version).mkdir(parents=True)
    install_plugin("gimp", env=env, platform="linux", gimp_version="3.2")
    assert levels(doctor.check_gimp(env)) == [("gimp 3.0", NOTE), ("gimp 3.2", OK)]

    entry = (home_of(env) / ".config/GIMP/3.2/plug-ins/neural-style-transfer"
             / "neural-style-transfer.py")
    entry.chmod(0o644)
    finding = doctor.check_gimp(env)[1]
    assert finding.level == PROBLEM and "not executable" in finding.found


def test_flatpak_editors_are_told_to_start_the_server_themselves(env):
    assert doctor.check_flatpak(env) == []
    (home_of(env) / ".var/app/org.gimp.GIMP").mkdir(parents=True)
    [note] = doctor.check_flatpak(env)
    assert note.topic == "GIMP flatpak" and note.level == NOTE and "nst-server" in note.fix


# ------------------------------------------------------------------------------ launch.json
def test_launch_file_missing_gone_not_ours_and_fine(tmp_path):
    def runs(status: int):
        return lambda command: status

    finding = doctor.check_launch(tmp_path, runs(0))
    assert finding.level == PROBLEM and "install-plugin" in finding.fix

    gone = LaunchSpec((str(tmp_path / "deleted-venv/bin/python"), "-m", "nst_server"),
                         tmp_path / "server.log")
    launch.write_launch(tmp_path, gone)
    finding = doctor.check_launch(tmp_path, runs(0))
    assert finding.level == PROBLEM and "gone" in finding.found

    here = LaunchSpec((sys.executable, "-m", "nst_server", "serve"), tmp_path / "server.log")
    launch.write_launch(tmp_path, here)
    finding = doctor.check_launch(tmp_path, runs(1))
    assert finding.level == PROBLEM and "has no nst_server package" in finding.found
    # The real probe, with this test's interpreter, where nst_server is installed.
    assert doctor.check_launch(tmp_path, doctor._exit_status).level == OK


# ------------------------------------------------------------------------------ the command
def test_doctor_reports_problems_with_what_to_do_then_passes_after_install(
        tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "GIMP3_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    port = str(free_port())

    assert cli.main(["doctor", "--port", port]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM  auto-start" in out and "-> nst-server install-plugin" in out
    assert out.rstrip().endswith("1 problem found.")
    for line in ("ok       torch", "ok       weights", f"ok       port {port}"):
        assert line in out

    (home / ".config/GIMP/3.0").mkdir(parents=True)
    assert cli.main(["install-plugin", "krita"]) == 0
    assert cli.main(["install-plugin", "gimp"]) == 0
    capsys.readouterr()
    assert cli.main(["doctor", "--port", port]) == 0
    out = capsys.readouterr().out
    assert "PROBLEM" not in out and out.rstrip().endswith("All checks passed.")
    for line in ("krita enabled", "gimp 3.0", "auto-start"):
        assert line in out
