"""Real GIMP 3 and Krita 5 for tests: run a script in them, or shoot their GUI.

The one module tests import. Public API (see tests/editors/conftest.py for the fixtures):
    GENERATIONS                             the Debian suites tested, with their editor series
    ensure_chroot(root, generation) -> Path build, or upgrade, a cached chroot (harness_chroot)
    editor_series(root, editor) -> str      "3.2" for the GIMP 3.2.6 in the chroot
    chroot_mounts(root)                     context manager: /proc and /dev mounted, ref-counted
    run_gimp(root, script, ...) -> EditorResult      headless, here
    run_krita(root, script, ...) -> EditorResult
    gui_screenshot(root, editor, name, ...) -> GuiResult   under Xvfb (harness_gui)
    gui_session(root, editor, ...) -> GuiSession  the GUI to drive with real keys (harness_gui)
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness_chroot import (
    GENERATIONS,
    HOW_TO_RUN,
    MOUNT_STATE_NAME,
    REPO_ROOT,
    Generation,
    HarnessUnavailable,
    chroot_mounts,
    editor_series,
    ensure_chroot,
    mounts_below,
    read_stamp,
)
from harness_gui import ARTIFACTS, GuiResult, GuiSession, gui_screenshot, gui_session
from harness_sandbox import (
    GIMP_BATCH_CODE,
    GIMP_PLUGINS,
    GIMP_PROFILE,
    KRITA_PYKRITA,
    EditorScriptError,
    FileSource,
    environment,
    home_path,
    kill_group,
    spawn,
    tail,
    workspace,
)

__all__ = [
    "ARTIFACTS",
    "GENERATIONS",
    "GIMP_PLUGINS",
    "GIMP_PROFILE",
    "HOW_TO_RUN",
    "KRITA_PYKRITA",
    "MOUNT_STATE_NAME",
    "REPO_ROOT",
    "EditorResult",
    "EditorScriptError",
    "Generation",
    "GuiResult",
    "GuiSession",
    "HarnessUnavailable",
    "chroot_mounts",
    "editor_series",
    "ensure_chroot",
    "gui_screenshot",
    "gui_session",
    "home_path",
    "mounts_below",
    "read_stamp",
    "run_gimp",
    "run_krita",
]


@dataclass
class EditorResult:
    """What a script left in its output folder (``$NST_OUT``), plus the editor's console."""

    files: dict[str, bytes]
    stdout: str
    stderr: str
    returncode: int


def _run_script(root: Path, editor: str, argv: Sequence[str], script: Path | str,
                inputs: Mapping[str, FileSource] | None,
                home_files: Mapping[str, FileSource] | None, env: Mapping[str, str] | None,
                timeout: float) -> EditorResult:
    with workspace(root, script, inputs, home_files) as ws:
        proc = spawn(root, ws, argv, environment(ws, env), stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, errors="replace")
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            stdout, stderr = proc.communicate()
            raise EditorScriptError(
                f"{editor} did not finish within {timeout:.0f} s\n--- stdout ---\n{tail(stdout)}"
                f"\n--- stderr ---\n{tail(stderr)}"
            ) from None
        finally:
            kill_group(proc)
        failure = ws.failure()
        if failure is not None:
            raise EditorScriptError(f"the script raised inside {editor}:\n{failure}"
                                    f"--- {editor} stderr ---\n{tail(stderr)}")
        if not ws.finished():
            raise EditorScriptError(
                f"{editor} exited ({proc.returncode}) without running the script to its end\n"
                f"--- stdout ---\n{tail(stdout)}\n--- stderr ---\n{tail(stderr)}"
            )
        ws.check_warnings(stdout + stderr, editor)
        return EditorResult(ws.outputs(), stdout, stderr, proc.returncode)


def run_gimp(root: Path, script: Path | str, *, inputs: Mapping[str, FileSource] | None = None,
             home_files: Mapping[str, FileSource] | None = None,
             env: Mapping[str, str] | None = None, timeout: float = 300) -> EditorResult:
    """Run a Python script inside the chroot's headless GIMP (``gimp-console-3.x``, python-fu-eval).

    The script runs in GIMP's Python with ``Gimp``, ``Gegl``, ``Gio`` importable; it finds its
    inputs in ``$NST_IN`` and writes what the test should see into ``$NST_OUT``. ``home_files``
    maps paths relative to the editor's HOME (e.g. ``f"{GIMP_PLUGINS}/name"``) to host files or
    folders (executable bits are kept). Raises EditorScriptError with the traceback on failure.
    """
    # GIMP 3.0 and 3.2 differ here only in the program's name (gimp-console-3.0, -3.2). The
    # versioned name says which GIMP runs; the bare gimp-console is just a link to it.
    argv = [f"gimp-console-{editor_series(root, 'gimp')}", "-i", "-d", "-f",
            "--batch-interpreter=python-fu-eval", "-b", GIMP_BATCH_CODE, "--quit"]
    return _run_script(root, "GIMP", argv, script, inputs, home_files, env, timeout)


def run_krita(root: Path, script: Path | str, *, inputs: Mapping[str, FileSource] | None = None,
              home_files: Mapping[str, FileSource] | None = None,
              env: Mapping[str, str] | None = None, timeout: float = 300) -> EditorResult:
    """Run a Python script inside the chroot's headless Krita (``kritarunner``, offscreen Qt).

    kritarunner loads no plugins: the script imports the plugin's non-UI modules itself (install
    them with ``home_files`` and put that folder on ``sys.path``; ``PYTHONPATH`` in ``env`` is
    appended to the workspace). Same contract as :func:`run_gimp` otherwise.
    """
    extra = {"QT_QPA_PLATFORM": "offscreen", **(env or {})}
    argv = ["kritarunner", "-s", "nst_harness_entry", "-f", "main"]
    return _run_script(root, "Krita", argv, script, inputs, home_files, extra, timeout)
