"""Install or package the Krita and GIMP plugins (`nst-server install-plugin`, `package-plugin`).

Why here and not in the plugins: the plugins are copied into the editors' own folders, and each
copy must carry the shared modules (:data:`SHARED`: the client and job flow, the dialogs' choices,
starting the server, pacing previews) where its ``shared`` module looks for them, so the editor's
Python needs nothing from this project at run time.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

EDITORS = ("krita", "gimp")


def _plugins_root() -> Path:
    """Where the plugins' files are: ``nst_server/plugins/`` inside an installed package (a
    wheel, ``pip install .``, pipx), else ``plugins/`` beside ``server/`` in the source tree
    (a checkout, an editable install)."""
    here = Path(__file__).resolve().parent
    packaged = here / "plugins"
    return packaged if packaged.is_dir() else here.parent / "plugins"


PLUGINS_ROOT = _plugins_root()
#: The modules in plugins/ that both plugins import (through their ``shared`` module).
SHARED = ("nst_client.py", "nst_options.py", "nst_launcher.py", "nst_previews.py",
          "nst_filelock.py")
KRITA_NAME = "neural_style_transfer"  # X-KDE-Library in the .desktop file and the package name
GIMP_NAME = "neural-style-transfer"  # GIMP 3 wants plug-ins/NAME/NAME.py
#: What GIMP 3 is called on PATH: Debian and Fedora name it after its version, too.
GIMP_PROGRAMS = ("gimp", "gimp-3", "gimp-3.2", "gimp-3.0")
_GIMP_SERIES = re.compile(r"3\.\d+")


class PluginInstallError(Exception):
    """Installing or packaging failed; the message says what to do."""


# ------------------------------------------------------------------------------------ folders
def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())


def uses_flatpak(app_id: str, env: Mapping[str, str] | None = None,
                 flatpak: bool | None = None) -> bool:
    """Flatpak editors keep their files under ~/.var/app/ID; use that once it exists."""
    if flatpak is not None:
        return flatpak
    return (_home(_env(env)) / ".var" / "app" / app_id).is_dir()


def krita_plugin_dir(
    platform: str | None = None, env: Mapping[str, str] | None = None, flatpak: bool | None = None
) -> Path:
    """Krita's ``pykrita`` folder in the user's resource folder."""
    platform, env = platform or sys.platform, _env(env)
    home = _home(env)
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "krita" / "pykrita"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "krita" / "pykrita"
    if uses_flatpak("org.kde.krita", env, flatpak):
        return home / ".var" / "app" / "org.kde.krita" / "data" / "krita" / "pykrita"
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return data / "krita" / "pykrita"


def kritarc_path(
    platform: str | None = None, env: Mapping[str, str] | None = None, flatpak: bool | None = None
) -> Path:
    """Krita's main settings file, where plugins are switched on."""
    platform, env = platform or sys.platform, _env(env)
    home = _home(env)
    if platform.startswith("win"):
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / "kritarc"
    if platform == "darwin":
        return home / "Library" / "Preferences" / "kritarc"
    if uses_flatpak("org.kde.krita", env, flatpak):
        return home / ".var" / "app" / "org.kde.krita" / "config" / "kritarc"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kritarc"


def gimp_profiles_root(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The folder that holds GIMP's profiles, one per minor version (``3.0``, ``3.2``...).

    The Flatpak GIMP (Flathub's org.gimp.GIMP) is granted ``xdg-config/GIMP``: inside its
    sandbox the host's ``~/.config/GIMP`` is mounted over ``~/.var/app/org.gimp.GIMP/config/GIMP``,
    so it reads the same folders as a native GIMP, and a plug-in put under ``~/.var/app`` would
    be hidden."""
    platform, env = platform or sys.platform, _env(env)
    home = _home(env)
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "GIMP"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "GIMP"


def gimp_profiles(platform: str | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """The GIMP 3 versions that have a profile here, oldest first: ``["3.0", "3.2"]``."""
    root = gimp_profiles_root(platform, env)
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if p.is_dir() and _GIMP_SERIES.fullmatch(p.name)]
    return sorted(found, key=lambda name: int(name.split(".")[1]))


def installed_gimp_version(
    run: Callable[[list[str]], str | None] | None = None,
) -> str | None:
    """The minor version (``"3.2"``) of the GIMP 3 on PATH, from ``gimp --version``; None if
    there is none. ``run`` returns a command's output, or None when it cannot run."""
    run = run or _output
    for program in GIMP_PROGRAMS:
        output = run([program, "--version"])
        match = re.search(r"version (3\.\d+)", output or "")
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class Placement:
    """Folders the plugin goes (or went) into, and why those: the installer tells the user."""

    folders: tuple[Path, ...]
    reason: str


def gimp_plugin_dirs(
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    version: str | None = None,
    detect: Callable[[], str | None] = installed_gimp_version,
) -> Placement:
    """The ``plug-ins`` folders of the GIMP 3 profiles the user's GIMP will read.

    GIMP keeps one profile per minor version and copies the previous one only when a new
    version first starts, so a plug-in put in 3.0's profile is never seen by a GIMP 3.2 that has
    already run. In order: the profile of ``version`` when one is asked for; else every GIMP 3
    profile there is; else the profile of the GIMP on PATH; else an error that says what to do.
    ``GIMP3_DIRECTORY`` (absolute, or relative to home) replaces the whole profile, so it wins.
    """
    env = _env(env)
    if env.get("GIMP3_DIRECTORY"):
        profile = _home(env) / env["GIMP3_DIRECTORY"]  # an absolute path replaces home
        return Placement((profile / "plug-ins",), "the profile GIMP3_DIRECTORY names")
    root = gimp_profiles_root(platform, env)
    if version is not None:
        if not _GIMP_SERIES.fullmatch(version):
            raise PluginInstallError(f"'{version}' is not a GIMP 3 version such as 3.0 or 3.2.")
        return Placement((root / version / "plug-ins",), f"GIMP {version}, as asked")
    profiles = gimp_profiles(platform, env)
    if profiles:
        return Placement(tuple(root / name / "plug-ins" for name in profiles),
                           f"every GIMP 3 profile found ({', '.join(profiles)})")
    detected = detect()
    if detected:
        return Placement((root / detected / "plug-ins",),
                           f"GIMP {detected}, the one on PATH (no profile yet)")
    raise PluginInstallError(
        f"No GIMP 3 profile in {root} and no GIMP 3 on PATH. Start GIMP once and run this "
        f"again, or name its version: install-plugin gimp --gimp-version 3.2")


def _output(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60,
                              check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------------ sources
def _sources(editor: str, plugins_root: Path) -> list[tuple[Path, str]]:
    """(source path, path inside the install folder) for every file an editor needs."""
    if editor not in EDITORS:
        raise PluginInstallError(f"Unknown editor '{editor}': choose one of {', '.join(EDITORS)}.")
    shared = [plugins_root / name for name in SHARED]
    if editor == "krita":
        # Inside the package: Krita's importer only takes the package folder and .desktop file.
        desktop = plugins_root / "krita" / f"{KRITA_NAME}.desktop"
        package = plugins_root / "krita" / KRITA_NAME
        needed, files = [desktop, package, *shared], [(desktop, desktop.name)]
        files += [(p, f"{KRITA_NAME}/{p.relative_to(package).as_posix()}") for p in _walk(package)]
        files += [(p, f"{KRITA_NAME}/{p.name}") for p in shared]
    else:
        # Beside the entry script, whose folder is on sys.path when GIMP runs it.
        folder = plugins_root / "gimp" / GIMP_NAME
        needed = [folder / f"{GIMP_NAME}.py", *shared]
        files = [(p, f"{GIMP_NAME}/{p.relative_to(folder).as_posix()}") for p in _walk(folder)]
        files += [(p, f"{GIMP_NAME}/{p.name}") for p in shared]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise PluginInstallError(
            f"The {editor} plugin's files are missing ({', '.join(missing)}). Reinstall "
            f"neural-style-transfer (pip install .) from its source folder."
        )
    return files


def _walk(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        hidden = any(
            p.startswith(".") or p == "__pycache__" for p in path.relative_to(folder).parts
        )
        if path.is_file() and not hidden and path.suffix != ".pyc":
            yield path


def _is_gimp_entry(relative: str) -> bool:
    return relative == f"{GIMP_NAME}/{GIMP_NAME}.py"


# ------------------------------------------------------------------------------------ install
def install_plugin(
    editor: str,
    destination: str | os.PathLike | None = None,
    *,
    gimp_version: str | None = None,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    flatpak: bool | None = None,
    plugins_root: str | os.PathLike | None = None,
) -> Placement:
    """Copy the plugin (and the shared modules) into the editor's folders; return the plugin's
    folder in each, and why those.

    ``destination`` replaces the editor's plug-in folder (``pykrita`` or GIMP's ``plug-ins``);
    without it, Krita's is found from the platform and GIMP's from its profiles (see
    :func:`gimp_plugin_dirs`, which ``gimp_version`` steers). A previous install of this plugin
    is replaced; nothing else in the folder is touched. For Krita the plugin is also switched
    on in ``kritarc`` (found from ``env``'s HOME), so it is active at Krita's next start.
    """
    root = Path(plugins_root) if plugins_root else PLUGINS_ROOT
    files = _sources(editor, root)
    if gimp_version is not None and editor != "gimp":
        raise PluginInstallError("--gimp-version is for the GIMP plugin only.")
    if destination is not None:
        where = Placement((Path(destination),), "the folder given")
    elif editor == "krita":
        where = Placement((krita_plugin_dir(platform, env, flatpak),), "Krita's resource folder")
    else:
        where = gimp_plugin_dirs(platform, env, gimp_version)
    targets = tuple(_copy(files, folder, editor) for folder in where.folders)
    if editor == "krita":
        try:
            enable_krita_plugin(kritarc_path(platform, env, flatpak))
        except OSError as exc:
            raise PluginInstallError(f"Could not switch the plugin on in kritarc: {exc}.") from exc
    return Placement(targets, where.reason)


def _copy(files: list[tuple[Path, str]], destination: Path, editor: str) -> Path:
    """Replace this plugin's folder in ``destination`` with ``files``; return that folder."""
    target = destination / (KRITA_NAME if editor == "krita" else GIMP_NAME)
    try:
        if target.exists():
            shutil.rmtree(target)
        for source, relative in files:
            path = destination / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
            if _is_gimp_entry(relative):
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError as exc:
        raise PluginInstallError(
            f"Could not install the {editor} plugin into {destination}: {exc}. Check that the "
            f"folder is writable, or pass another destination."
        ) from exc
    return target


def enable_krita_plugin(kritarc: Path, name: str = KRITA_NAME) -> None:
    """Set ``enable_<name>=true`` under ``[python]`` in kritarc, keeping every other line."""
    key = f"enable_{name}"
    text = ""
    if kritarc.exists():
        with open(kritarc, encoding="utf-8", newline="") as file:  # keep \r\n as written
            text = file.read()
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    section_start = next((i for i, line in enumerate(lines) if line.strip() == "[python]"), None)
    if section_start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += ["[python]", f"{key}=true"]
    else:
        end = next(
            (i for i in range(section_start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        existing = [
            i for i in range(section_start + 1, end) if lines[i].split("=", 1)[0].strip() == key
        ]
        if existing:
            lines[existing[0]] = f"{key}=true"
        else:
            # After the section's last non-blank line, so blank separators stay where they were.
            insert = end
            while insert - 1 > section_start and not lines[insert - 1].strip():
                insert -= 1
            lines.insert(insert, f"{key}=true")
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    temporary = kritarc.with_name(kritarc.name + ".nst-tmp")
    temporary.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    os.replace(temporary, kritarc)


def krita_plugin_enabled(kritarc: Path, name: str = KRITA_NAME) -> bool:
    """Whether kritarc switches the plugin on (``enable_<name>=true`` under ``[python]``):
    Krita loads a plugin in ``pykrita`` only then."""
    try:
        lines = kritarc.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    section = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == "[python]":
            key, _, value = stripped.partition("=")
            if key.strip() == f"enable_{name}":
                return value.strip().lower() == "true"
    return False


# ------------------------------------------------------------------------------------ package
def package_plugin(
    editor: str, output: str | os.PathLike, *, plugins_root: str | os.PathLike | None = None
) -> Path:
    """Write a zip of the plugin: for Krita's Tools > Scripts > Import Python Plugin from File,
    or to unpack into GIMP's plug-ins folder (the entry file keeps its executable bit)."""
    root = Path(plugins_root) if plugins_root else PLUGINS_ROOT
    files = _sources(editor, root)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, relative in files:
            info = zipfile.ZipInfo(relative, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if _is_gimp_entry(relative) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, source.read_bytes())
    return output
