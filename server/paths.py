"""Where the server keeps its files, per operating system, and how it keeps them private.

The config folder (token, ``connection.json``) must match what the plugins' client looks for
(``nst_client.config_dir`` in ``plugins/nst_client.py``), so local use needs no set-up;
tests/unit/test_server_security.py checks that the two agree."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "nst-server"


def config_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Linux ``$XDG_CONFIG_HOME/nst-server``, macOS ``~/Library/Application Support/nst-server``,
    Windows ``%APPDATA%\\nst-server``."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / APP_NAME


def data_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Job database, uploaded inputs and results: Linux ``$XDG_DATA_HOME/nst-server``, macOS
    ``~/Library/Application Support/nst-server/data``, Windows ``%LOCALAPPDATA%\\nst-server``."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / APP_NAME
    if platform == "darwin":
        return config_dir(env, platform) / "data"
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / APP_NAME


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (0700), made so if it was looser: a
    folder created by an older version, or under a permissive umask, is tightened too. Only
    ``path`` itself: its parents (``~/.config``...) are the user's business."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Make an existing file readable by its owner only (0600), if it is not already."""
    if path.exists() and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def write_private(path: Path, data: str) -> None:
    """Write a file readable by its owner only, atomically (a reader never sees half a token).

    The file is created 0600 before any byte is written, so there is no moment where another
    user could read it."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
