"""``nst-server``'s commands other than serving: what an artist sees when one of them fails."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import pytest

from nst_server import cli
from nst_server.datalock import DataLock


def test_install_plugin_failure_is_one_line_and_exit_1(tmp_path, capsys):
    """An unwritable destination: the installer's own message, not a traceback."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the plug-in folder should be")
    assert cli.main(["install-plugin", "gimp", "--dest", str(blocker)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("nst-server: Could not install the gimp plugin into ")
    assert "Traceback" not in err[0]


def test_package_plugin_failure_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    """Missing plugin sources (an install without plugins/) are explained, not raised."""
    monkeypatch.setattr(cli.plugin_install, "PLUGINS_ROOT", tmp_path / "nothing")
    assert cli.main(["package-plugin", "krita", "-o", str(tmp_path / "k.zip")]) == 1
    err = capsys.readouterr().err
    assert "The krita plugin's files are missing" in err and "Traceback" not in err


def test_install_plugin_success_says_what_to_do_next(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)  # launch.json goes into the HOME
    assert cli.main(["install-plugin", "gimp", "--dest", str(tmp_path / "plug-ins")]) == 0
    out = capsys.readouterr().out
    assert "Installed the gimp plugin" in out and "Filters > Artistic" in out


def test_install_plugin_says_which_gimp_profiles_it_chose(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    for version in ("3.0", "3.2"):
        (tmp_path / ".config/GIMP" / version).mkdir(parents=True)
    assert cli.main(["install-plugin", "gimp"]) == 0
    out = capsys.readouterr().out
    assert "every GIMP 3 profile found (3.0, 3.2)" in out
    assert out.count("/plug-ins/neural-style-transfer") == 2
    assert cli.main(["install-plugin", "gimp", "--gimp-version", "3.4"]) == 0
    assert "GIMP 3.4, as asked" in capsys.readouterr().out
    assert (tmp_path / ".config/GIMP/3.4/plug-ins/neural-style-transfer").is_dir()


def test_token_is_printed_and_kept(tmp_path, capsys):
    assert cli.main(["token", "--config-dir", str(tmp_path)]) == 0
    first = capsys.readouterr().out.strip()
    assert cli.main(["token", "--config-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == first and len(first) >= 32


@pytest.fixture
def root_logging():
    """`serve` configures the root logger for the whole process: put it back afterwards."""
    saved = logging.root.handlers[:]
    yield
    for handler in logging.root.handlers:
        if handler not in saved:
            handler.close()
    logging.root.handlers[:] = saved


def test_a_server_that_fails_says_why_in_its_log_file(tmp_path, monkeypatch, root_logging):
    """A server an editor started has no terminal: the log file is where the plugin finds why
    it stopped, a bug's traceback included."""

    def broken(args) -> int:
        raise RuntimeError("CUDA driver too old")

    monkeypatch.setattr(cli, "_run_server", broken)
    log = tmp_path / "data" / "server.log"
    assert cli.main(["serve", "--log-file", str(log)]) == 1
    text = log.read_text()
    assert "the server stopped on an unexpected error" in text
    assert "RuntimeError: CUDA driver too old" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name == "nt", reason="closes descriptors with a POSIX shell")
def test_a_detached_server_that_must_give_way_exits_1_and_logs_why(tmp_path):
    """Started as a launcher may start it (no stdin, stdout or stderr at all) on a data folder
    another server holds: it ends at once, before loading any model, and only its log says
    why."""
    data, log = tmp_path / "data", tmp_path / "data" / "server.log"
    holder = DataLock.acquire(data)
    holder.announce("http://127.0.0.1:8765")
    try:
        done = subprocess.run(
            ["sh", "-c", 'exec "$@" <&- >&- 2>&-', "sh", sys.executable, "-m", "nst_server",
             "serve", "--data-dir", str(data), "--config-dir", str(tmp_path / "config"),
             "--log-file", str(log), "--idle-timeout", "30"], timeout=120, cwd=tmp_path)
    finally:
        holder.release()
    assert done.returncode == 1
    [line] = log.read_text().splitlines()
    assert "already running on the data folder" in line and "http://127.0.0.1:8765" in line


@pytest.mark.skipif(os.name == "nt", reason="redirects with a POSIX shell")
def test_a_server_whose_stderr_is_its_log_file_writes_each_line_once(tmp_path):
    """The plugins' launcher appends the server's output to the log file, for what fails before
    logging starts; the server must then not log to both."""
    data, log = tmp_path / "data", tmp_path / "data" / "server.log"
    data.mkdir()
    holder = DataLock.acquire(data)
    holder.announce("http://127.0.0.1:8765")
    try:
        done = subprocess.run(
            ["sh", "-c", 'exec "$@" </dev/null >>"$LOG" 2>&1', "sh", sys.executable, "-m",
             "nst_server", "serve", "--data-dir", str(data), "--config-dir",
             str(tmp_path / "config"), "--log-file", str(log)],
            timeout=120, cwd=tmp_path, env={**os.environ, "LOG": str(log)})
    finally:
        holder.release()
    assert done.returncode == 1
    [line] = log.read_text().splitlines()
    assert "already running on the data folder" in line
