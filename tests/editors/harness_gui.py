"""The editors' real GUI under Xvfb, with plugins installed and enabled, and screenshots of it.

There is no window manager: windows are found by title through ``inside/x11tool.py`` (libX11 via
ctypes inside the chroot) and the screen is grabbed with GDK, so the host needs no X libraries.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness_chroot import REPO_ROOT, editor_series, package_version
from harness_sandbox import (
    GIMP_BATCH_CODE,
    GIMP_PROFILE,
    INSIDE,
    KRITA_PYKRITA,
    EditorScriptError,
    FileSource,
    Workspace,
    environment,
    home_path,
    kill_group,
    spawn,
    tail,
    workspace,
)

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


@dataclass
class GuiResult:
    """A screenshot of the editor's GUI and the named windows that were on screen."""

    screenshot: Path
    windows: list[dict]
    files: dict[str, bytes]
    #: Everything the editor wrote to stdout and stderr, e.g. GIMP's warnings about its dialogs.
    console: str


def _chroot_output(root: Path, ws: Workspace, argv: Sequence[str], env: Mapping[str, str],
                   timeout: float = 30) -> str:
    proc = spawn(root, ws, argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    if proc.returncode != 0:
        raise EditorScriptError(f"{' '.join(argv)} failed: {stderr[-2000:]}")
    return stdout


def _start_xvfb(root: Path, ws: Workspace, env: Mapping[str, str],
                size: tuple[int, int]) -> tuple[subprocess.Popen, str]:
    """Xvfb picks a free display itself (-displayfd), so parallel runs never collide.

    ``-noreset``: by default the server resets whenever its last client disconnects, which
    our window-list polls do while the editor is still starting; an editor that connects
    during such a reset is dropped ("could not connect to display").
    """
    argv = ["Xvfb", "-displayfd", "1", "-screen", "0", f"{size[0]}x{size[1]}x24",
            "-nolisten", "tcp", "-ac", "-noreset"]
    proc = spawn(root, ws, argv, env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # Xvfb writes it once it accepts clients
    if not line.isdigit():
        kill_group(proc)
        raise EditorScriptError("Xvfb did not start in the chroot")
    return proc, f":{line}"


def _gui_argv(root: Path, editor: str, ws: Workspace, open_files: Sequence[str]) -> list[str]:
    files = [ws.path("in", name) for name in open_files]
    if editor == "gimp":
        # The one difference between GIMP 3.0 and 3.2 here: the program's name (see run_gimp).
        return [f"gimp-{editor_series(root, 'gimp')}", "--no-splash",
                "--batch-interpreter=python-fu-eval", "-b", GIMP_BATCH_CODE, *files]
    if editor == "krita":
        return ["krita", "--nosplash", *files]
    raise ValueError(f"unknown editor {editor!r}")


def _prepare_gui_home(root: Path, editor: str, ws: Workspace,
                      krita_plugins: Sequence[str]) -> None:
    home = ws.host_path("home")
    if editor == "gimp":
        gimprc = home / home_path(root, GIMP_PROFILE) / "gimprc"
        gimprc.parent.mkdir(parents=True, exist_ok=True)
        # GIMP shows its welcome dialog over everything on the first start of each version
        # (judged by config-version), whatever show-welcome-dialog says; and never go online.
        with open(gimprc, "a") as handle:
            handle.write(f'(config-version "{package_version(root, "gimp")}")\n'
                         "(show-welcome-dialog no)\n(check-updates no)\n")
    else:
        pykrita = home / KRITA_PYKRITA
        pykrita.mkdir(parents=True, exist_ok=True)
        shutil.copy2(INSIDE / "nst_harness_driver.desktop", pykrita)
        shutil.copytree(INSIDE / "nst_harness_driver", pykrita / "nst_harness_driver",
                        ignore=shutil.ignore_patterns("__pycache__"))
        kritarc = home / ".config/kritarc"
        kritarc.parent.mkdir(parents=True, exist_ok=True)
        enabled = "".join(f"enable_{name}=true\n" for name in ["nst_harness_driver",
                                                               *krita_plugins])
        with open(kritarc, "a") as handle:
            handle.write(f"\n[python]\n{enabled}")


def _windows(root: Path, ws: Workspace, env: Mapping[str, str]) -> list[dict]:
    return json.loads(_chroot_output(root, ws, ["python3", ws.path("x11tool.py"), "list"], env))


def _screenshot(root: Path, ws: Workspace, env: Mapping[str, str], target: Path,
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
    Timers and slots the action leaves behind keep running; what they write to ``$NST_OUT`` is
    in ``files``, and an exception they raise fails the call like one in the action itself.

    The screenshot is taken ``settle`` seconds after a window whose title contains
    ``wait_for_title`` is on screen (or, without it, after the action finished), of that window
    alone with ``crop_to_window``, and saved as ``tests/artifacts/<name>-<generation>.png``
    (e.g. ``gimp-dialog-gimp3.2-krita5.3.png``), so each generation's look can be compared.
    Raises EditorScriptError (after saving ``...-timeout.png``) if that never happens.
    """
    if crop_to_window and not wait_for_title:
        raise ValueError("crop_to_window needs wait_for_title")
    with gui_session(root, editor, action=action, inputs=inputs, home_files=home_files, env=env,
                     open_files=open_files, krita_plugins=krita_plugins, size=size) as gui:
        return _await_and_shoot(gui, gui.artifact_name(name), wait_for_title, crop_to_window,
                                settle, timeout)


class GuiSession:
    """An editor's GUI running under Xvfb, to look at and to drive as a person does: real
    key presses and clicks through XTest (``xdotool`` inside the chroot)."""

    def __init__(self, root: Path, ws: Workspace, env: Mapping[str, str],
                 editor_proc: subprocess.Popen, log) -> None:
        self.root, self.ws, self.env = root, ws, env
        self.editor_proc = editor_proc
        self._log = log

    def artifact_name(self, name: str) -> str:
        """``name`` with the generation, e.g. ``gimp-dialog-gimp3.2-krita5.3``."""
        return (f"{name}-gimp{editor_series(self.root, 'gimp')}"
                f"-krita{editor_series(self.root, 'krita')}")

    def console(self) -> str:
        """Everything the editor wrote to stdout and stderr so far."""
        self._log.flush()
        return self.ws.host_path("ctl", "editor.log").read_text(errors="replace")

    def windows(self) -> list[dict]:
        """The named top-level windows on screen."""
        return _windows(self.root, self.ws, self.env)

    def check_alive(self) -> None:
        """Raise if the action raised or the editor exited."""
        failure = self.ws.failure()
        if failure is not None:
            raise EditorScriptError(f"the action raised inside the GUI:\n{failure}\n"
                                    f"{tail(self.console())}")
        if self.editor_proc.poll() is not None:
            raise EditorScriptError(f"the editor exited ({self.editor_proc.returncode})\n"
                                    f"{tail(self.console())}")

    def wait_for_window(self, title: str, timeout: float = 120) -> dict:
        """The window whose title is exactly ``title``, once it is on screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            window = next((w for w in self.windows() if w["title"] == title), None)
            if window is not None:
                return window
            time.sleep(0.5)
        raise EditorScriptError(f"no window titled {title!r} within {timeout:.0f} s; windows: "
                                f"{[w['title'] for w in self.windows()]}\n"
                                f"{tail(self.console())}")

    def xdotool(self, *args: str) -> str:
        """Run ``xdotool`` on the editor's display: XTest events, as from a real keyboard."""
        return _chroot_output(self.root, self.ws, ["xdotool", *args], self.env)

    def press(self, window: dict, keys: str) -> None:
        """Put the pointer on ``window``, give it the keyboard focus, and press ``keys``
        (xdotool's names, e.g. ``alt+o``, ``Return``)."""
        x = window["x"] + window["width"] // 2
        y = window["y"] + window["height"] // 2
        self.xdotool("mousemove", "--sync", str(x), str(y))
        self.xdotool("windowfocus", "--sync", str(window["id"]))
        self.xdotool("key", keys)

    def screenshot(self, name: str, window: dict | None = None) -> Path:
        """The screen (or ``window``) as tests/artifacts/<name>.png."""
        return _screenshot(self.root, self.ws, self.env, ARTIFACTS / f"{name}.png", window)

    def check_warnings(self) -> None:
        """Fail if our plugin's code logged warnings (harness_warnings)."""
        self.ws.check_warnings(self.console(), "the editor's GUI")


@contextlib.contextmanager
def gui_session(root: Path, editor: str, *, action: Path | str = "",
                inputs: Mapping[str, FileSource] | None = None,
                home_files: Mapping[str, FileSource] | None = None,
                env: Mapping[str, str] | None = None, open_files: Sequence[str] = (),
                krita_plugins: Sequence[str] = (),
                size: tuple[int, int] = (1280, 800)) -> Iterator[GuiSession]:
    """Start the editor's real GUI under Xvfb and run ``action`` in it (as for
    :func:`gui_screenshot`); the editor and Xvfb are stopped when the block ends."""
    with workspace(root, action, inputs, home_files) as ws:
        _prepare_gui_home(root, editor, ws, krita_plugins)
        base_env = environment(ws, env)
        xvfb, display = _start_xvfb(root, ws, base_env, size)
        gui_env = {**base_env, "DISPLAY": display}
        log = open(ws.host_path("ctl", "editor.log"), "w+")  # noqa: SIM115 - closed below
        editor_proc = spawn(root, ws, _gui_argv(root, editor, ws, open_files), gui_env,
                             stdout=log, stderr=subprocess.STDOUT)
        try:
            yield GuiSession(root, ws, gui_env, editor_proc, log)
        finally:
            kill_group(editor_proc)
            kill_group(xvfb)
            log.close()


def _await_and_shoot(gui: GuiSession, name: str, wait_for_title: str | None,
                     crop_to_window: bool, settle: float, timeout: float) -> GuiResult:
    def matching(windows: list[dict]) -> dict | None:
        return next((w for w in windows if wait_for_title and wait_for_title in w["title"]), None)

    deadline = time.monotonic() + timeout
    windows: list[dict] = []
    while time.monotonic() < deadline:
        gui.check_alive()
        windows = gui.windows()
        if (wait_for_title and matching(windows)) or (not wait_for_title and gui.ws.finished()):
            time.sleep(settle)
            windows = gui.windows()
            window = matching(windows) if crop_to_window else None
            shot = gui.screenshot(name, window)
            gui.check_warnings()
            return GuiResult(shot, windows, gui.ws.outputs(), gui.console())
        time.sleep(1.0)
    gui.screenshot(f"{name}-timeout")
    raise EditorScriptError(f"no window titled {wait_for_title!r} within {timeout:.0f} s; "
                            f"windows: {[w['title'] for w in windows]}; see "
                            f"tests/artifacts/{name}-timeout.png\n{tail(gui.console())}")
