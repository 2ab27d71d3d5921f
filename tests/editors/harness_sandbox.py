"""Processes inside the chroot: a throw-away workspace per editor run, and nothing left behind.

Each run gets a fresh folder under the chroot's /tmp holding its own HOME, TMPDIR, inputs, outputs
and a control folder. Neither editor's exit status says whether a script raised, so scripts run
through ``inside/nst_harness_entry.py``, which records a traceback or a "done" marker in the
control folder for the caller to judge.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness_chroot import CHROOT_PATH, editor_series
from harness_warnings import QT_WARNINGS_FILE, our_warnings

INSIDE = Path(__file__).resolve().parent / "inside"  # files that run inside the editors
FileSource = Path | str | bytes  # a host file or folder (Path), or the contents

# Where each editor looks for user plugins, relative to HOME (handy for ``home_files``).
# GIMP keeps one profile per minor series and reads only its own: ``{gimp}`` in a
# ``home_files`` path becomes the series of the chroot's GIMP ("3.0", "3.2"), so the same
# test installs into the profile of whichever GIMP it runs.
GIMP_SERIES_FIELD = "{gimp}"
GIMP_PROFILE = f".config/GIMP/{GIMP_SERIES_FIELD}"
GIMP_PLUGINS = f"{GIMP_PROFILE}/plug-ins"
KRITA_PYKRITA = ".local/share/krita/pykrita"

# python-fu-eval runs this in GIMP's plug-in process; PYTHONPATH names the workspace.
GIMP_BATCH_CODE = "import nst_harness_entry; nst_harness_entry.main()"


class EditorScriptError(AssertionError):
    """The script raised inside the editor, never ran, or the editor hung."""


@dataclass
class Workspace:
    """A fresh folder under the chroot's /tmp: home/, in/, out/, ctl/ and the scripts."""

    host: Path
    inside: str

    def host_path(self, *parts: str) -> Path:
        return self.host.joinpath(*parts)

    def path(self, *parts: str) -> str:
        return "/".join([self.inside, *parts])

    def outputs(self) -> dict[str, bytes]:
        out = self.host_path("out")
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.is_file()}

    def failure(self) -> str | None:
        traceback = self.host_path("ctl", "traceback.txt")
        if traceback.exists():
            return traceback.read_text()
        return None

    def finished(self) -> bool:
        return self.host_path("ctl", "done").exists()

    def check_warnings(self, console: str, editor: str) -> None:
        """Fail when our plugin warned (harness_warnings.py says what counts)."""
        qt = self.host_path("ctl", QT_WARNINGS_FILE)
        found = our_warnings(console, qt.read_text() if qt.exists() else "")
        if found:
            raise EditorScriptError(f"our plugin warned in {editor}:\n" + "\n".join(found))


def _place(source: FileSource, target: Path) -> None:
    """Copy a host file or folder (keeping executable bits), or write str/bytes contents."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        target.write_bytes(source)
    elif isinstance(source, str):
        target.write_text(source)
    elif source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(source, target)


def _source_text(script: Path | str) -> str:
    return script.read_text() if isinstance(script, Path) else script


def home_path(root: Path, relative: str) -> str:
    """``relative`` (to HOME) with ``{gimp}`` replaced by the series of the chroot's GIMP."""
    if GIMP_SERIES_FIELD not in relative:
        return relative
    return relative.replace(GIMP_SERIES_FIELD, editor_series(root, "gimp"))


@contextlib.contextmanager
def workspace(root: Path, script: Path | str, inputs: Mapping[str, FileSource] | None,
               home_files: Mapping[str, FileSource] | None) -> Iterator[Workspace]:
    host = Path(tempfile.mkdtemp(prefix="nst-", dir=root / "tmp"))
    os.chmod(host, 0o755)
    ws = Workspace(host, "/tmp/" + host.name)
    for sub in ("home", "in", "out", "ctl", "run", "tmp"):
        ws.host_path(sub).mkdir()
    os.chmod(ws.host_path("run"), 0o700)
    for helper in ("nst_harness_entry.py", "x11tool.py"):
        shutil.copy2(INSIDE / helper, ws.host_path(helper))
    ws.host_path("script.py").write_text(_source_text(script))
    for name, source in (inputs or {}).items():
        _place(source, ws.host_path("in", name))
    for name, source in (home_files or {}).items():
        _place(source, ws.host_path("home", home_path(root, name)))
    try:
        yield ws
    finally:
        shutil.rmtree(host, ignore_errors=True)


def environment(ws: Workspace, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": CHROOT_PATH, "LANG": "C.UTF-8", "HOME": ws.path("home"),
        "XDG_RUNTIME_DIR": ws.path("run"), "PYTHONPATH": ws.inside,
        # A private TMPDIR: Krita's swap files and its single-instance socket land there, so
        # nothing is left behind and parallel runs never find "another Krita" to hand over to.
        "TMPDIR": ws.path("tmp"),
        "NST_IN": ws.path("in"), "NST_OUT": ws.path("out"), "NST_CTL": ws.path("ctl"),
        "NST_SCRIPT": ws.path("script.py"), "PYTHONDONTWRITEBYTECODE": "1",
        # Show DeprecationWarning outside __main__ too (plugins never are): see harness_warnings.
        "PYTHONWARNINGS": "default",
    }
    extra = dict(extra or {})
    if "PYTHONPATH" in extra:
        extra["PYTHONPATH"] = f"{ws.inside}:{extra['PYTHONPATH']}"
    env.update(extra)
    return env


def spawn(root: Path, ws: Workspace, argv: Sequence[str], env: Mapping[str, str],
           **popen: object) -> subprocess.Popen:
    """Start ``argv`` inside the chroot, in the workspace, as the leader of a new process group."""
    command = ["chroot", str(root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
               "/bin/sh", "-c", 'cd "$0" && exec "$@"', ws.inside, *argv]
    return subprocess.Popen(command, start_new_session=True, **popen)  # type: ignore[arg-type]


def kill_group(proc: subprocess.Popen) -> None:
    """Editors leave helpers behind (plug-ins, dbus); none may outlive the test."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
            if sig == signal.SIGTERM:
                time.sleep(0.2)
        except subprocess.TimeoutExpired:
            continue


def tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]
