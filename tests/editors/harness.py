"""Real GIMP 3.0 and Krita 5.2, headless, inside a cached Debian 13 chroot.

Why a chroot: the plugins must be proven in the editors artists really use, and Debian 13 ships
GIMP 3.0 and Krita 5.2 with their Pythons, while the host may be older. The chroot is built once by
debootstrap (about 2 minutes, 2 GB) and cached; every run then only bind-mounts /proc and /dev.

Why the wrappers: neither editor's exit status says whether the script raised, so each script runs
inside a small wrapper that writes the traceback (or a "done" marker) to a control folder, and the
helpers turn that into a clear test failure.

Public API (see tests/editors/conftest.py for the fixtures):
    ensure_chroot(root) -> Path             build, or upgrade, the cached chroot
    chroot_mounts(root)                     context manager: /proc and /dev mounted, ref-counted
    run_gimp(root, script, ...) -> EditorResult
    run_krita(root, script, ...) -> EditorResult
    gui_screenshot(root, editor, name, ...) -> GuiResult
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
HERE = Path(__file__).resolve().parent

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("gimp", "krita", "python3-gi", "python3-pyqt5", "xvfb", "xauth")
STAMP_NAME = ".nst-editors-stamp.json"  # inside the chroot, written only after a complete build
MOUNT_STATE_NAME = ".nst-mounts.json"  # inside the chroot, so it moves with the finished build
MOUNT_LOCK_NAME = ".nst-mounts.lock"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOW_TO_RUN = "run them as root: `sudo .venv/bin/pytest tests/editors`"

# Where each editor looks for user plugins, relative to HOME (handy for ``home_files``).
GIMP_PLUGINS = ".config/GIMP/3.0/plug-ins"
KRITA_PYKRITA = ".local/share/krita/pykrita"

FileSource = Path | str | bytes  # a host file or folder (Path), or the contents


class HarnessUnavailable(Exception):
    """The chroot cannot be built or entered here; editor tests skip with this message."""


class EditorScriptError(AssertionError):
    """The script raised inside the editor, never ran, or the editor hung."""


@dataclass
class EditorResult:
    """What a script left in its output folder (``$NST_OUT``), plus the editor's console."""

    files: dict[str, bytes]
    stdout: str
    stderr: str
    returncode: int


@dataclass
class GuiResult:
    """A screenshot of the editor's GUI and the named windows that were on screen."""

    screenshot: Path
    windows: list[dict]
    files: dict[str, bytes]
    console: str


def default_chroot_dir() -> Path:
    """``$NST_EDITOR_CHROOT`` or ``.cache/editors-chroot`` at the repository root (git-ignored)."""
    return Path(os.environ.get("NST_EDITOR_CHROOT") or REPO_ROOT / ".cache" / "editors-chroot")


# ----------------------------------------------------------------------------- locks and mounts
@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock that the kernel drops if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process_key(pid: int) -> str | None:
    """``pid:start-time``: unlike a bare pid it cannot be mistaken for a recycled process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def _alive(key: str) -> bool:
    return _process_key(int(key.split(":")[0])) == key


def _decode_mount_path(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _mount_points() -> list[str]:
    """Every mount point, once per mount (stacked mounts repeat), decoded from mountinfo."""
    with open("/proc/self/mountinfo") as handle:
        return [_decode_mount_path(line.split()[4]) for line in handle]


def mounts_below(root: Path) -> list[str]:
    """Mount points strictly inside ``root`` (stacked ones once), outermost first."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    inside = {p for p in _mount_points() if p.startswith(prefix)}
    return sorted(inside, key=lambda p: p.count("/"))


def _unmount(point: str) -> None:
    """Unmount ``point`` and everything below it (stacked mounts too), lazily if busy.

    The subtree is made a slave first: unmounting inside a recursive bind of a *shared* /dev
    would otherwise propagate to the host's /dev/pts and /dev/shm.
    """
    subprocess.run(["mount", "--make-rslave", point], check=False, capture_output=True)
    if subprocess.run(["umount", "-R", point], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-R", "-l", point], check=False, capture_output=True)
    if point in _mount_points():
        raise RuntimeError(f"could not unmount {point}")


def _unmount_all(root: Path) -> None:
    """Unmount everything inside ``root`` (before deleting a tree: rm must never reach /dev)."""
    for point in mounts_below(root):
        if point in _mount_points():  # not already gone with a parent
            _unmount(point)


# What the editors need inside the chroot: (mount point, mount command). /dev is bound
# recursively, so /dev/shm (Qt, Xvfb) and /dev/pts work, and made a slave so nothing flows back.
_MOUNTS = (
    ("proc", (["mount", "-t", "proc", "proc", "{}"],)),
    ("dev", (["mount", "--rbind", "/dev", "{}"], ["mount", "--make-rslave", "{}"])),
)


def _mount(point: str, commands: Sequence[Sequence[str]]) -> None:
    for command in commands:
        proc = subprocess.run([arg.format(point) for arg in command], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            with contextlib.suppress(RuntimeError):
                _unmount(point)
            raise HarnessUnavailable(f"cannot mount {point}: {proc.stderr.strip()}")


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[Path]:
    """Keep /proc and /dev mounted in the chroot while any process (test run) uses it.

    State (a JSON file inside the chroot, changed under a file lock) lists the users as
    ``pid:start-time`` and the mounts the harness made. The first user mounts what is missing,
    the last one unmounts what the harness mounted (also on failure or Ctrl-C). Mounts that were
    already there and are not the harness's (a colleague working in the chroot by hand) are used
    but never unmounted. Mounts left by a run that was SIGKILLed are the harness's: the next run
    reuses them and unmounts them when it ends.
    """
    root = Path(os.path.realpath(root))
    state_file = root / MOUNT_STATE_NAME

    def load() -> tuple[list[str], list[str]]:
        try:
            state = json.loads(state_file.read_text())
            return [k for k in state["users"] if _alive(k)], list(state["mounted"])
        except (OSError, ValueError, KeyError, TypeError):
            return [], []

    def save(users: list[str], mounted: list[str]) -> None:
        state_file.write_text(json.dumps({"users": users, "mounted": mounted}))

    me = _process_key(os.getpid())
    assert me is not None
    with _flock(root / MOUNT_LOCK_NAME):
        users, mounted = load()
        if not users:
            present = _mount_points()
            mounted = [p for p in mounted if str(root / p) in present]
            for name, commands in _MOUNTS:
                if str(root / name) not in present:
                    _mount(str(root / name), commands)
                    mounted.append(name)
        save([*users, me], mounted)
    try:
        yield root
    finally:
        with _flock(root / MOUNT_LOCK_NAME):
            users, mounted = load()
            if me in users:  # once: this process may hold the mounts twice (nested use)
                users.remove(me)
            if not users:
                for name in mounted:
                    _unmount(str(root / name))
                mounted = []
            save(users, mounted)


# ----------------------------------------------------------------------------- building
def read_stamp(root: Path) -> dict | None:
    try:
        return json.loads((root / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(root: Path, packages: Sequence[str]) -> None:
    stamp = {"suite": SUITE, "packages": sorted(set(packages)),
             "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (root / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")


def _run_logged(argv: Sequence[str], what: str, timeout: float = 1800) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise HarnessUnavailable(f"{what} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "debootstrap"]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise HarnessUnavailable(f"debootstrap is missing and `{' '.join(argv)}` failed: "
                                     f"{proc.stderr[-1000:]}")


def _apt_install(root: Path, packages: Sequence[str]) -> None:
    with chroot_mounts(root):
        base = ["chroot", str(root), "/usr/bin/env", "-i", f"PATH={CHROOT_PATH}",
                "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"]
        _run_logged([*base, "apt-get", "update"], "apt-get update in the chroot")
        _run_logged([*base, "apt-get", "install", "-y", "--no-install-recommends", *packages],
                    f"installing {' '.join(packages)} in the chroot")
        _run_logged([*base, "apt-get", "clean"], "apt-get clean in the chroot")


def _remove_tree(path: Path) -> None:
    if path.exists():
        _unmount_all(path)
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def ensure_chroot(root: Path, packages: Sequence[str] = PACKAGES) -> Path:
    """Return a complete chroot at ``root``: reuse the cache, upgrade it, or build it.

    A build happens in ``<root>.partial`` and is renamed into place only once the stamp (the
    package list) is written, so an interrupted build is never taken for a good cache. A cache
    stamped with an older package list gets the missing packages installed.
    """
    if os.geteuid() != 0:
        raise HarnessUnavailable(f"real-editor tests need root to build and enter a chroot; "
                                 f"{HOW_TO_RUN}")
    root = Path(os.path.abspath(root))
    with _flock(root.parent / f".{root.name}.build.lock"):
        stamp = read_stamp(root)
        if stamp is None and root.exists():
            raise HarnessUnavailable(f"{root} exists but has no {STAMP_NAME} (not built by this "
                                     f"harness, or damaged): remove it and run again")
        if stamp is None:
            partial = root.with_name(root.name + ".partial")
            _remove_tree(partial)
            _ensure_debootstrap()
            _run_logged(["debootstrap", "--variant=minbase", SUITE, str(partial), MIRROR],
                        "debootstrap")
            _apt_install(partial, packages)
            _write_stamp(partial, packages)
            partial.rename(root)
        else:
            missing = [p for p in packages if p not in stamp["packages"]]
            if missing:
                _apt_install(root, missing)
                _write_stamp(root, [*stamp["packages"], *missing])
    return root


# ----------------------------------------------------------------------------- running scripts
_ENTRY = '''\
"""Written by tests/editors/harness.py: run the test script, record how it ended.

The script's globals are kept for the life of the process (runpy would clear them when it
returns), so timers and slots it leaves behind in a GUI still find their names; exceptions they
raise later are recorded too, through sys.excepthook, so they fail the test.
"""
import os, sys, traceback

_namespaces = []


def main(*_args):
    ctl = os.environ["NST_CTL"]
    script = os.environ["NST_SCRIPT"]
    previous_hook = sys.excepthook

    def hook(kind, value, tb):
        _record(ctl, "traceback.txt", "".join(traceback.format_exception(kind, value, tb)))
        previous_hook(kind, value, tb)

    sys.excepthook = hook
    namespace = {"__name__": "__main__", "__file__": script}
    _namespaces.append(namespace)
    try:
        sys.argv = [script]
        with open(script) as handle:
            exec(compile(handle.read(), script, "exec"), namespace)
    except SystemExit as stop:
        if stop.code not in (None, 0):
            _record(ctl, "traceback.txt", traceback.format_exc())
            return
    except BaseException:
        _record(ctl, "traceback.txt", traceback.format_exc())
        return
    _record(ctl, "done", "")


def _record(ctl, name, text):
    with open(os.path.join(ctl, name), "w") as handle:
        handle.write(text)
'''


# python-fu-eval runs this in GIMP's plug-in process; PYTHONPATH names the workspace.
GIMP_BATCH_CODE = "import nst_harness_entry; nst_harness_entry.main()"


@dataclass
class _Workspace:
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


@contextlib.contextmanager
def _workspace(root: Path, script: Path | str, inputs: Mapping[str, FileSource] | None,
               home_files: Mapping[str, FileSource] | None) -> Iterator[_Workspace]:
    host = Path(tempfile.mkdtemp(prefix="nst-", dir=root / "tmp"))
    os.chmod(host, 0o755)
    ws = _Workspace(host, "/tmp/" + host.name)
    for sub in ("home", "in", "out", "ctl", "run", "tmp"):
        ws.host_path(sub).mkdir()
    os.chmod(ws.host_path("run"), 0o700)
    ws.host_path("nst_harness_entry.py").write_text(_ENTRY)
    ws.host_path("script.py").write_text(_source_text(script))
    shutil.copy2(HERE / "x11tool.py", ws.host_path("x11tool.py"))
    for name, source in (inputs or {}).items():
        _place(source, ws.host_path("in", name))
    for name, source in (home_files or {}).items():
        _place(source, ws.host_path("home", name))
    try:
        yield ws
    finally:
        shutil.rmtree(host, ignore_errors=True)


def _environment(ws: _Workspace, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": CHROOT_PATH, "LANG": "C.UTF-8", "HOME": ws.path("home"),
        "XDG_RUNTIME_DIR": ws.path("run"), "PYTHONPATH": ws.inside,
        # A private TMPDIR: Krita's swap files and its single-instance socket land there, so
        # nothing is left behind and parallel runs never find "another Krita" to hand over to.
        "TMPDIR": ws.path("tmp"),
        "NST_IN": ws.path("in"), "NST_OUT": ws.path("out"), "NST_CTL": ws.path("ctl"),
        "NST_SCRIPT": ws.path("script.py"), "PYTHONDONTWRITEBYTECODE": "1",
    }
    extra = dict(extra or {})
    if "PYTHONPATH" in extra:
        extra["PYTHONPATH"] = f"{ws.inside}:{extra['PYTHONPATH']}"
    env.update(extra)
    return env


def _spawn(root: Path, ws: _Workspace, argv: Sequence[str], env: Mapping[str, str],
           **popen: object) -> subprocess.Popen:
    """Start ``argv`` inside the chroot, in the workspace, as the leader of a new process group."""
    command = ["chroot", str(root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
               "/bin/sh", "-c", 'cd "$0" && exec "$@"', ws.inside, *argv]
    return subprocess.Popen(command, start_new_session=True, **popen)  # type: ignore[arg-type]


def _kill_group(proc: subprocess.Popen) -> None:
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


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _run_script(root: Path, editor: str, argv: Sequence[str], script: Path | str,
                inputs: Mapping[str, FileSource] | None,
                home_files: Mapping[str, FileSource] | None, env: Mapping[str, str] | None,
                timeout: float) -> EditorResult:
    with _workspace(root, script, inputs, home_files) as ws:
        proc = _spawn(root, ws, argv, _environment(ws, env), stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, errors="replace")
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            raise EditorScriptError(
                f"{editor} did not finish within {timeout:.0f} s\n--- stdout ---\n{_tail(stdout)}"
                f"\n--- stderr ---\n{_tail(stderr)}"
            ) from None
        finally:
            _kill_group(proc)
        failure = ws.failure()
        if failure is not None:
            raise EditorScriptError(f"the script raised inside {editor}:\n{failure}"
                                    f"--- {editor} stderr ---\n{_tail(stderr)}")
        if not ws.finished():
            raise EditorScriptError(
                f"{editor} exited ({proc.returncode}) without running the script to its end\n"
                f"--- stdout ---\n{_tail(stdout)}\n--- stderr ---\n{_tail(stderr)}"
            )
        return EditorResult(ws.outputs(), stdout, stderr, proc.returncode)


def run_gimp(root: Path, script: Path | str, *, inputs: Mapping[str, FileSource] | None = None,
             home_files: Mapping[str, FileSource] | None = None,
             env: Mapping[str, str] | None = None, timeout: float = 300) -> EditorResult:
    """Run a Python script inside headless GIMP 3.0 (``gimp-console-3.0``, python-fu-eval).

    The script runs in GIMP's Python with ``Gimp``, ``Gegl``, ``Gio`` importable; it finds its
    inputs in ``$NST_IN`` and writes what the test should see into ``$NST_OUT``. ``home_files``
    maps paths relative to the editor's HOME (e.g. ``f"{GIMP_PLUGINS}/name"``) to host files or
    folders (executable bits are kept). Raises EditorScriptError with the traceback on failure.
    """
    argv = ["gimp-console-3.0", "-i", "-d", "-f", "--batch-interpreter=python-fu-eval",
            "-b", GIMP_BATCH_CODE, "--quit"]
    return _run_script(root, "GIMP", argv, script, inputs, home_files, env, timeout)


def run_krita(root: Path, script: Path | str, *, inputs: Mapping[str, FileSource] | None = None,
              home_files: Mapping[str, FileSource] | None = None,
              env: Mapping[str, str] | None = None, timeout: float = 300) -> EditorResult:
    """Run a Python script inside headless Krita 5.2 (``kritarunner``, offscreen Qt).

    kritarunner loads no plugins: the script imports the plugin's non-UI modules itself (install
    them with ``home_files`` and put that folder on ``sys.path``; ``PYTHONPATH`` in ``env`` is
    appended to the workspace). Same contract as :func:`run_gimp` otherwise.
    """
    extra = {"QT_QPA_PLATFORM": "offscreen", **(env or {})}
    argv = ["kritarunner", "-s", "nst_harness_entry", "-f", "main"]
    return _run_script(root, "Krita", argv, script, inputs, home_files, extra, timeout)


# ----------------------------------------------------------------------------- GUI screenshots
_KRITA_DRIVER_DESKTOP = """[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library=nst_harness_driver
X-Python-2-Compatible=false
Name=NST test harness driver
Comment=Runs the test's action script once Krita's main window exists
"""

_KRITA_DRIVER = '''"""Written by tests/editors/harness.py: run the action script in Krita's GUI."""
import os
import sys

from krita import Extension, Krita
from PyQt5.QtCore import QTimer


class _Driver(Extension):
    def setup(self):
        Krita.instance().notifier().windowCreated.connect(self._window_created)

    def createActions(self, window):
        pass

    def _window_created(self):
        QTimer.singleShot(1000, self._run)

    def _run(self):
        sys.path.insert(0, os.path.dirname(os.environ["NST_SCRIPT"]))
        import nst_harness_entry
        nst_harness_entry.main()


Krita.instance().addExtension(_Driver(Krita.instance()))
'''


def _chroot_output(root: Path, ws: _Workspace, argv: Sequence[str], env: Mapping[str, str],
                   timeout: float = 30) -> str:
    proc = _spawn(root, ws, argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        _kill_group(proc)
    if proc.returncode != 0:
        raise EditorScriptError(f"{' '.join(argv)} failed: {stderr[-2000:]}")
    return stdout


def _start_xvfb(root: Path, ws: _Workspace, env: Mapping[str, str],
                size: tuple[int, int]) -> tuple[subprocess.Popen, str]:
    """Xvfb picks a free display itself (-displayfd), so parallel runs never collide."""
    argv = ["Xvfb", "-displayfd", "1", "-screen", "0", f"{size[0]}x{size[1]}x24",
            "-nolisten", "tcp", "-ac"]
    proc = _spawn(root, ws, argv, env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # Xvfb writes it once it accepts clients
    if not line.isdigit():
        _kill_group(proc)
        raise EditorScriptError("Xvfb did not start in the chroot")
    return proc, f":{line}"


def _gui_argv(editor: str, ws: _Workspace, open_files: Sequence[str]) -> list[str]:
    files = [ws.path("in", name) for name in open_files]
    if editor == "gimp":
        return ["gimp-3.0", "--no-splash", "--batch-interpreter=python-fu-eval",
                "-b", GIMP_BATCH_CODE, *files]
    if editor == "krita":
        return ["krita", "--nosplash", *files]
    raise ValueError(f"unknown editor {editor!r}")


def package_version(root: Path, package: str) -> str:
    """The upstream version of a package installed in the chroot ("3.0.4" for 3.0.4-3+deb13u1)."""
    status = (root / "var/lib/dpkg/status").read_text()
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if fields.get("Package") == package and "Version" in fields:
            return fields["Version"].split(":")[-1].split("-")[0]
    raise LookupError(f"{package} is not installed in {root}")


def _prepare_gui_home(root: Path, editor: str, ws: _Workspace,
                      krita_plugins: Sequence[str]) -> None:
    home = ws.host_path("home")
    if editor == "gimp":
        gimprc = home / ".config/GIMP/3.0/gimprc"
        gimprc.parent.mkdir(parents=True, exist_ok=True)
        # GIMP shows its welcome dialog over everything on the first start of each version
        # (judged by config-version), whatever show-welcome-dialog says; and never go online.
        with open(gimprc, "a") as handle:
            handle.write(f'(config-version "{package_version(root, "gimp")}")\n'
                         "(show-welcome-dialog no)\n(check-updates no)\n")
    else:
        pykrita = home / KRITA_PYKRITA
        (pykrita / "nst_harness_driver").mkdir(parents=True, exist_ok=True)
        (pykrita / "nst_harness_driver.desktop").write_text(_KRITA_DRIVER_DESKTOP)
        (pykrita / "nst_harness_driver" / "__init__.py").write_text(_KRITA_DRIVER)
        kritarc = home / ".config/kritarc"
        kritarc.parent.mkdir(parents=True, exist_ok=True)
        enabled = "".join(f"enable_{name}=true\n" for name in ["nst_harness_driver",
                                                               *krita_plugins])
        with open(kritarc, "a") as handle:
            handle.write(f"\n[python]\n{enabled}")


def _windows(root: Path, ws: _Workspace, env: Mapping[str, str]) -> list[dict]:
    return json.loads(_chroot_output(root, ws, ["python3", ws.path("x11tool.py"), "list"], env))


def _screenshot(root: Path, ws: _Workspace, env: Mapping[str, str], target: Path,
                window: dict | None) -> Path:
    box = [] if window is None else [str(window[k]) for k in ("x", "y", "width", "height")]
    _chroot_output(root, ws, ["python3", ws.path("x11tool.py"), "shot",
                              ws.path("ctl", "shot.png"), *box], env)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ws.host_path("ctl", "shot.png"), target)
    return target


def gui_screenshot(root: Path, editor: str, name: str, *, action: Path | str = "",
                   inputs: Mapping[str, FileSource] | None = None,
                   home_files: Mapping[str, FileSource] | None = None,
                   env: Mapping[str, str] | None = None, open_files: Sequence[str] = (),
                   krita_plugins: Sequence[str] = (), wait_for_title: str | None = None,
                   crop_to_window: bool = False, settle: float = 2.0, timeout: float = 240,
                   size: tuple[int, int] = (1280, 800)) -> GuiResult:
    """Start the editor's real GUI under Xvfb, run ``action`` in it, return a screenshot.

    ``editor`` is "gimp" or "krita". ``open_files`` are names from ``inputs`` opened at start.
    ``action`` is a Python script run inside the GUI once it is up: GIMP runs it through
    python-fu-eval (it may call a procedure with RunMode.INTERACTIVE to show its dialog); Krita
    runs it from a small driver plugin a second after the main window appears (show dialogs with
    ``show()``, not ``exec_()``). ``krita_plugins`` are pykrita names to enable in kritarc.

    The screenshot is taken ``settle`` seconds after a window whose title contains
    ``wait_for_title`` is on screen (or, without it, after the action finished), of that window
    alone with ``crop_to_window``, and saved as ``tests/artifacts/<name>.png``. Raises
    EditorScriptError (after saving ``<name>-timeout.png``) if that never happens.
    """
    if crop_to_window and not wait_for_title:
        raise ValueError("crop_to_window needs wait_for_title")
    with _workspace(root, action, inputs, home_files) as ws:
        _prepare_gui_home(root, editor, ws, krita_plugins)
        base_env = _environment(ws, env)
        xvfb, display = _start_xvfb(root, ws, base_env, size)
        gui_env = {**base_env, "DISPLAY": display}
        log = open(ws.host_path("ctl", "editor.log"), "w+")  # noqa: SIM115 - closed below
        editor_proc = _spawn(root, ws, _gui_argv(editor, ws, open_files), gui_env,
                             stdout=log, stderr=subprocess.STDOUT)
        try:
            return _await_and_shoot(root, ws, gui_env, editor_proc, log, name, wait_for_title,
                                    crop_to_window, settle, timeout)
        finally:
            _kill_group(editor_proc)
            _kill_group(xvfb)
            log.close()


def _await_and_shoot(root: Path, ws: _Workspace, env: Mapping[str, str],
                     editor_proc: subprocess.Popen, log, name: str, wait_for_title: str | None,
                     crop_to_window: bool, settle: float, timeout: float) -> GuiResult:
    def console() -> str:
        log.flush()
        return _tail(ws.host_path("ctl", "editor.log").read_text(errors="replace"))

    def matching(windows: list[dict]) -> dict | None:
        return next((w for w in windows if wait_for_title and wait_for_title in w["title"]), None)

    deadline = time.monotonic() + timeout
    windows: list[dict] = []
    while time.monotonic() < deadline:
        failure = ws.failure()
        if failure is not None:
            raise EditorScriptError(f"the action raised inside the GUI:\n{failure}\n{console()}")
        if editor_proc.poll() is not None:
            raise EditorScriptError(f"the editor exited ({editor_proc.returncode}) before the "
                                    f"screenshot\n{console()}")
        windows = _windows(root, ws, env)
        if (wait_for_title and matching(windows)) or (not wait_for_title and ws.finished()):
            time.sleep(settle)
            windows = _windows(root, ws, env)
            window = matching(windows) if crop_to_window else None
            shot = _screenshot(root, ws, env, ARTIFACTS / f"{name}.png", window)
            return GuiResult(shot, windows, ws.outputs(), console())
        time.sleep(1.0)
    _screenshot(root, ws, env, ARTIFACTS / f"{name}-timeout.png", None)
    raise EditorScriptError(f"no window titled {wait_for_title!r} within {timeout:.0f} s; "
                            f"windows: {[w['title'] for w in windows]}; see "
                            f"tests/artifacts/{name}-timeout.png\n{console()}")
