"""``launch.json``: how the editors start this installation's server when it is not running.

Why a file: the plugins run inside the editors' own Python, which has neither torch nor this
package, and cannot guess where it was installed (a virtual environment, pipx, a checkout).
``nst-server install-plugin`` knows, so it writes the absolute command into the config folder,
beside ``connection.json``, where both plugins look::

    {"version": 1,
     "command": ["/abs/python", "-m", "nst_server", "serve", "--idle-timeout", "30", ...],
     "log": "/abs/data/server.log"}

The plugins run ``command`` detached and wait for ``/v1/health``; the server it starts logs
to ``log`` (the plugins show its last lines when the start fails) and stops itself after the
idle time, so a server nobody uses does not hold memory for ever.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .paths import write_private
from .plugins.nst_launcher import LAUNCH_FILE, LaunchSpec, NotInstalled, read_launch_spec

LOG_FILE = "server.log"
#: Minutes without a request or a job before a server started by an editor stops itself.
DEFAULT_IDLE_MINUTES = 30.0


def server_python(executable: str | None = None, platform: str | None = None) -> Path:
    """The interpreter of this installation, as an absolute path that is *not* resolved: a
    virtual environment's ``bin/python`` is a symlink, and following it would leave the
    environment (and its packages) behind. On Windows, ``pythonw.exe`` beside it when there
    is one, so starting the server opens no console window."""
    python = Path(executable or sys.executable).absolute()
    if (platform or sys.platform).startswith("win"):
        windowless = python.with_name("pythonw.exe")
        if windowless.is_file():
            return windowless
    return python


def launch_for(config_dir: Path, data_dir: Path, idle_minutes: float,
               python: Path | None = None) -> LaunchSpec:
    """The launch description for this installation. The folders are written out in full, so
    the server an editor starts uses the same ones whatever that editor's environment says."""
    if idle_minutes < 0:
        raise ValueError(f"the idle time must be 0 (never stop) or more minutes, "
                         f"not {idle_minutes:g}")
    log = data_dir.absolute() / LOG_FILE
    command = (str(python or server_python()), "-m", "nst_server", "serve",
               "--config-dir", str(config_dir.absolute()),
               "--data-dir", str(data_dir.absolute()),
               "--idle-timeout", f"{idle_minutes:g}",
               "--log-file", str(log))
    return LaunchSpec(command, log)


class LaunchFileError(Exception):
    """``launch.json`` is missing or unreadable; the message says which and what to do."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; run `nst-server install-plugin krita` (or gimp) again "
                         f"to rewrite it")
        #: What is wrong, without the advice (``nst-server doctor`` gives its own).
        self.problem = problem


def write_launch(config_dir: Path, launch: LaunchSpec) -> Path:
    """Write ``launch.json`` (0600, atomically) into ``config_dir``; return its path."""
    path = config_dir / LAUNCH_FILE
    write_private(path, json.dumps(launch.record(), indent=2) + "\n")
    return path


def read_launch(config_dir: Path) -> LaunchSpec:
    """Read ``launch.json`` back as the plugins do (for ``nst-server doctor``)."""
    try:
        return read_launch_spec(config_dir / LAUNCH_FILE)
    except NotInstalled as error:
        raise LaunchFileError(error.problem) from None
