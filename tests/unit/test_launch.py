"""``launch.json``: written by ``install-plugin``, read by the plugins to start the server."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from nst_server import cli, launch
from nst_server.launch import LaunchFileError, launch_for, read_launch, write_launch
from nst_server.plugins.nst_launcher import LaunchSpec


def test_the_command_names_this_installation_and_its_folders_in_full(tmp_path):
    started = launch_for(Path("config"), tmp_path / "data", 12.5, python=Path("/venv/bin/python"))
    assert started.command[:4] == ("/venv/bin/python", "-m", "nst_server", "serve")
    assert started.log == tmp_path / "data" / "server.log"
    args = cli._parser().parse_args(list(started.command[3:]))
    # The serve command accepts every flag the launch command carries, with these values.
    assert args.idle_timeout == 12.5
    assert args.log_file == started.log
    assert args.data_dir == tmp_path / "data"
    assert args.config_dir.is_absolute() and args.config_dir.name == "config"


def test_the_interpreter_is_this_one_and_a_venv_symlink_is_not_followed(tmp_path):
    real = tmp_path / "python3.11"
    real.write_text("")
    link = tmp_path / "venv-python"
    link.symlink_to(real)
    assert launch.server_python(str(link), "linux") == link
    assert launch.server_python(platform="linux") == Path(sys.executable).absolute()


def test_windows_prefers_the_windowless_interpreter(tmp_path):
    (tmp_path / "python.exe").write_text("")
    assert launch.server_python(str(tmp_path / "python.exe"), "win32") == tmp_path / "python.exe"
    (tmp_path / "pythonw.exe").write_text("")
    assert launch.server_python(str(tmp_path / "python.exe"), "win32") == (
        tmp_path / "pythonw.exe")


def test_a_negative_idle_time_is_refused():
    with pytest.raises(ValueError, match="idle time"):
        launch_for(Path("c"), Path("d"), -1)


def test_written_privately_and_read_back(tmp_path):
    started = LaunchSpec(("/py", "-m", "nst_server", "serve"), tmp_path / "server.log")
    path = write_launch(tmp_path / "config", started)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "version": 1, "command": ["/py", "-m", "nst_server", "serve"],
        "log": str(tmp_path / "server.log")}
    assert read_launch(tmp_path / "config") == started


@pytest.mark.parametrize("content, why", [
    (None, "there is no"),
    ("{not json", "cannot be read"),
    ('{"version": 2, "command": ["/py"], "log": "/l"}', "not a version 1 launch file"),
    ('{"version": 1, "command": [], "log": "/l"}', "not a version 1 launch file"),
    ('{"version": 1, "command": ["/py", 3], "log": "/l"}', "not a version 1 launch file"),
    ('["/py"]', "not a version 1 launch file"),
])
def test_a_missing_or_broken_file_says_how_to_rewrite_it(tmp_path, content, why):
    if content is not None:
        (tmp_path / "launch.json").write_text(content)
    with pytest.raises(LaunchFileError, match=why) as caught:
        read_launch(tmp_path)
    assert "install-plugin" in str(caught.value)


def test_install_plugin_writes_it_with_the_idle_time_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    destination = str(tmp_path / "plug-ins")
    assert cli.main(["install-plugin", "gimp", "--dest", destination]) == 0
    config = tmp_path / ".config/nst-server"
    command = read_launch(config).command
    assert command[command.index("--idle-timeout") + 1] == "30"
    assert "stops after 30 minutes without use" in capsys.readouterr().out

    assert cli.main(["install-plugin", "gimp", "--dest", destination,
                     "--idle-timeout", "0"]) == 0
    command = read_launch(config).command
    assert command[command.index("--idle-timeout") + 1] == "0"
    assert "runs until you stop it" in capsys.readouterr().out
    assert read_launch(config).log == tmp_path / ".local/share/nst-server/server.log"


@pytest.mark.parametrize("minutes", ["-5", "soon", "nan", "inf"])
def test_a_bad_idle_time_is_refused_before_anything_is_installed(tmp_path, capsys, minutes):
    with pytest.raises(SystemExit):
        cli.main(["install-plugin", "gimp", "--dest", str(tmp_path / "p"),
                  "--idle-timeout", minutes])
    assert "is not a number of minutes" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
