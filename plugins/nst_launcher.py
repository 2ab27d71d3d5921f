"""Start this installation's server from inside an editor, so an artist never needs a terminal.

Shared by the Krita and GIMP plugins (standard library only, copied beside each plugin like
``nst_client``). `nst-server install-plugin` writes ``launch.json`` beside ``connection.json``:
``{"version": 1, "command": [...], "log": "..."}``, the absolute command that starts the server of
the installation it ran from, and the log that server appends to. :func:`ensure_server` returns a
client of a server that answers ``/v1/health``, starting one with that command when none does.

Why the pieces are as they are:

* The server runs detached (a session of its own, no pipes), so it outlives the dialog, the
  plug-in process GIMP ends after each run, and the editor; it stops itself when idle.
* Its output goes to the log too: a server that cannot even import (a broken install) says why
  there, and a failed start shows the log's last lines in the dialog.
* Two editors pressing Stylize at once must end with one server. A lock file beside
  ``launch.json`` lets one of them start it while the other waits for its health; the server's
  own data-folder lock stops a second server started any other way, which exits at once, and
  the launcher then waits a little for the server that holds the folder.
* A Flatpak editor cannot run host programs unless it was allowed to talk to
  ``org.freedesktop.Flatpak`` (then ``flatpak-spawn --host`` runs the command); without that
  the artist is told the command and how to allow it.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

try:  # installed inside the Krita plugin's package, or nst_server.plugins
    from . import nst_client, nst_filelock
except ImportError:  # beside the GIMP plug-in, or plugins/ in the source tree
    import nst_client
    import nst_filelock

__all__ = [
    "NOT_RUNNING",
    "STARTING",
    "LaunchError",
    "LaunchSpec",
    "NotInstalled",
    "SandboxedEditor",
    "StartFailed",
    "ensure_server",
    "host_command",
    "launch_file",
    "reachable_client",
    "read_launch_spec",
]

#: What the dialogs show while no server answers, and while one is being started.
NOT_RUNNING = "Server not running"
STARTING = "Starting the server (loading VGG-19)..."
LAUNCH_FILE = "launch.json"
LAUNCH_VERSION = 1
LOCK_FILE = "launch.lock"
#: Loading VGG-19 and the first device check take seconds on a GPU, longer on a slow CPU.
START_TIMEOUT_S = 180.0
#: After our server exited, how long another one (holding the data folder or the port, and
#: finishing its own start) may take to answer before the start counts as failed.
OTHER_SERVER_GRACE_S = 20.0
LOG_TAIL_LINES = 12
FLATPAK_INFO = Path("/.flatpak-info")
#: How the server is spawned on Windows: DETACHED_PROCESS, CREATE_NEW_PROCESS_GROUP,
#: CREATE_NO_WINDOW (no console window, no Ctrl+C from the editor's console).
_DETACHED = 0x00000008 | 0x00000200 | 0x08000000 if sys.platform.startswith("win") else 0
REINSTALL_HINT = ("Run `nst-server install-plugin krita` (or `gimp`) again from the installation "
                  "you want to use; it records how to start that server.")


class LaunchError(nst_client.ServerUnavailable):
    """The server is not running and could not be started; the message says what to do."""


class NotInstalled(LaunchError):
    """``launch.json`` is missing or broken: this plugin does not know how to start the server.

    ``problem`` says what is wrong with the file, without the advice (``nst-server doctor``
    gives its own)."""

    def __init__(self, problem: str, missing: bool = False) -> None:
        if missing:
            message = (f"The style transfer server is not running, and this plugin does not "
                       f"know how to start it ({problem}). {REINSTALL_HINT} Or start it "
                       f"yourself with `nst-server`.")
        else:
            message = f"{problem[0].upper()}{problem[1:]}. {REINSTALL_HINT}"
        super().__init__(message)
        self.problem = problem


class SandboxedEditor(LaunchError):
    """A Flatpak editor without permission to start host programs; ``command`` is what to run."""

    def __init__(self, message: str, command: list[str]) -> None:
        super().__init__(message)
        self.command = command


class StartFailed(LaunchError):
    """The server was started but never answered; ``log_tail`` is the end of its log."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class LaunchSpec:
    """How to start this installation's server: what ``launch.json`` holds. This module owns
    the file's format; the server writes it with :meth:`record` and reads it back with
    :func:`read_launch_spec` too (``nst-server doctor``)."""

    command: tuple[str, ...]
    log: Path

    def shell_text(self) -> str:
        """The command as an artist would type it (for messages)."""
        return " ".join(_quote(part) for part in self.command)

    def record(self) -> dict:
        """The JSON object that ``launch.json`` holds."""
        return {"version": LAUNCH_VERSION, "command": list(self.command), "log": str(self.log)}


def _quote(part: str) -> str:
    if part and all(c.isalnum() or c in "-_./=:@%+," for c in part):
        return part
    return "'" + part.replace("'", "'\\''") + "'"


# ------------------------------------------------------------------------------ launch.json
def launch_file(env: Mapping[str, str] | None = None) -> Path:
    """``launch.json`` in the folder where the server writes ``connection.json``."""
    return nst_client.config_dir(env=env) / LAUNCH_FILE


def read_launch_spec(path: Path) -> LaunchSpec:
    """The spec in ``path``; NotInstalled, saying how to make one, if it is missing or bad."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotInstalled(f"there is no {path}", missing=True) from None
    except (OSError, ValueError) as exc:
        raise NotInstalled(f"{path} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        data = {}
    command, log = data.get("command"), data.get("log")
    if data.get("version") != LAUNCH_VERSION or not (
        isinstance(command, list) and command and all(isinstance(c, str) for c in command)
        and isinstance(log, str) and log
    ):
        raise NotInstalled(f"{path} is not a version {LAUNCH_VERSION} launch file with a "
                           f"command and a log")
    return LaunchSpec(tuple(command), Path(log))


# ---------------------------------------------------------------------------------- health
def reachable_client(env: Mapping[str, str] | None = None, timeout: float = 3.0
                     ) -> nst_client.Client | None:
    """A client of the server named by ``connection.json`` (or the environment) if it answers
    ``/v1/health`` now, else None. Read afresh each time: a server writes it when it listens."""
    try:
        return _healthy_client(env, timeout)
    except nst_client.ServerUnavailable:
        return None


def _healthy_client(env: Mapping[str, str] | None, timeout: float = 3.0) -> nst_client.Client:
    client = nst_client.Client.discover(env=env, timeout=timeout)
    client.health()
    client.timeout = 60.0  # the job's requests get the client's usual patience
    return client


# --------------------------------------------------------------------------------- flatpak
def _flatpak_info(env: Mapping[str, str], info_file: Path) -> configparser.ConfigParser | None:
    """The sandbox's metadata when this editor runs as a Flatpak, else None."""
    if not (env.get("FLATPAK_ID") or info_file.exists()):
        return None
    info = configparser.ConfigParser(interpolation=None)
    # A sandbox whose metadata cannot be read is treated as one allowed nothing.
    with contextlib.suppress(OSError, configparser.Error):
        info.read(info_file, encoding="utf-8")
    return info


def _may_spawn_on_host(info: configparser.ConfigParser) -> bool:
    """`flatpak override --talk-name=org.freedesktop.Flatpak` lets flatpak-spawn --host run."""
    policy = info.get("Session Bus Policy", "org.freedesktop.Flatpak", fallback="")
    return policy in ("talk", "own")


def host_command(spec: LaunchSpec, env: Mapping[str, str] | None = None,
                 info_file: Path = FLATPAK_INFO) -> list[str]:
    """The command to run from this editor: ``spec.command`` itself, through
    ``flatpak-spawn --host`` in a Flatpak allowed to, and SandboxedEditor in one that is not."""
    env = os.environ if env is None else env
    info = _flatpak_info(env, info_file)
    if info is None:
        return list(spec.command)
    if _may_spawn_on_host(info):
        return ["flatpak-spawn", "--host", *spec.command]
    app = env.get("FLATPAK_ID") or info.get("Application", "name", fallback="") or "APP-ID"
    raise SandboxedEditor(
        f"This editor runs as a Flatpak, which may not start programs outside its sandbox, so "
        f"it cannot start the style transfer server. Start it yourself in a terminal with:\n"
        f"  {spec.shell_text()}\n"
        f"or allow this editor to start it (once, then restart the editor):\n"
        f"  flatpak override --user --talk-name=org.freedesktop.Flatpak {app}",
        list(spec.command),
    )


# ----------------------------------------------------------------------------------- start
def ensure_server(
    on_status: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
    poll: float = 0.5,
) -> nst_client.Client:
    """A client of a running server: the one that answers now, else one started from
    ``launch.json`` (``on_status`` hears :data:`STARTING` first). Blocks until the server
    answers, so call it off the editor's UI thread. Raises a LaunchError that says what to do,
    or, for a server named by ``NST_SERVER_URL`` (never replaced by a local one), the client's
    own ServerUnavailable.
    """
    try:
        return _healthy_client(env)
    except nst_client.ServerUnavailable:
        if (os.environ if env is None else env).get("NST_SERVER_URL"):
            raise  # a server chosen by hand, maybe elsewhere, is never replaced by a local one
    spec = read_launch_spec(launch_file(env))
    command = host_command(spec, env)
    if on_status is not None:
        on_status(STARTING)
    deadline = time.monotonic() + timeout
    with _start_lock(launch_file(env).with_name(LOCK_FILE), env, deadline, poll) as ready:
        if ready is not None:  # another editor started it while we waited for the lock
            return ready
        return _start_and_wait(spec, command, env, deadline, poll)


@contextlib.contextmanager
def _start_lock(path: Path, env: Mapping[str, str] | None, deadline: float, poll: float
                ) -> Iterator[nst_client.Client | None]:
    """Hold the start lock; yields the client of a server that came up meanwhile, or None
    (then the holder starts one). The lock goes with the process, however it ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        while not nst_filelock.try_lock(handle.fileno()):
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"Another editor has been starting the style transfer server for too long "
                    f"(it holds {path}). Close the other dialogs and try again."
                )
            time.sleep(poll)
        try:
            yield reachable_client(env)
        finally:
            nst_filelock.unlock(handle.fileno())


def _start_and_wait(spec: LaunchSpec, command: list[str], env: Mapping[str, str] | None,
                    deadline: float, poll: float) -> nst_client.Client:
    log_start = _log_size(spec.log)
    process = _spawn(command, spec)
    exited_at: float | None = None
    while True:
        client = reachable_client(env)
        if client is not None:
            return client
        now = time.monotonic()
        if exited_at is None and process.poll() is not None:
            exited_at = now
        gave_up = now > deadline or (exited_at is not None
                                     and now - exited_at > OTHER_SERVER_GRACE_S)
        if gave_up:
            raise _start_failed(spec, log_start, process.returncode)
        time.sleep(poll)


def _spawn(command: list[str], spec: LaunchSpec) -> subprocess.Popen:
    """Run ``command`` detached: its own session (no editor's signal or exit reaches it), no
    standard input, output appended to the log (unwritable log: the server's own logging)."""
    try:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        output = open(spec.log, "ab")  # noqa: SIM115 - handed to the child, closed below
    except OSError:
        output = None
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output if output is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if output is not None else subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            creationflags=_DETACHED,
        )
    except OSError as exc:
        raise LaunchError(
            f"Cannot run the server's command ({exc.strerror or exc}):\n  {spec.shell_text()}\n"
            f"{REINSTALL_HINT}"
        ) from None
    finally:
        if output is not None:
            output.close()


def _start_failed(spec: LaunchSpec, log_start: int, returncode: int | None) -> StartFailed:
    tail = _log_tail(spec.log, log_start)
    what = ("did not answer in time" if returncode is None
            else f"stopped (exit status {returncode})")
    shown = f"\nThe end of its log ({spec.log}):\n{tail}" if tail else f" Its log: {spec.log}."
    return StartFailed(
        f"The style transfer server {what}.{shown}\nFix what the log says, or start the server "
        f"yourself to see more:\n  {spec.shell_text()}",
        tail,
    )


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _log_tail(path: Path, start: int, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines written to the log since ``start`` (this start's own)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
