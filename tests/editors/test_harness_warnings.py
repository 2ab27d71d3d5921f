"""Warnings from our plugins fail the run: which console lines count, and proof in both editors."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import EditorScriptError, run_gimp, run_krita
from harness_warnings import our_warnings

OUR_FILE = "/tmp/nst-x/home/.local/share/krita/pykrita/neural_style_transfer/dialog.py"
GIMP_PLUGIN = "/tmp/nst-x/home/.config/GIMP/3.2/plug-ins/neural-style-transfer/nst_gimp/ui.py"


def test_python_warnings_count_only_from_our_files() -> None:
    console = (f"{OUR_FILE}:12: DeprecationWarning: exec_ is deprecated\n"
               f"{GIMP_PLUGIN}:40: PyGIWarning: Gtk was imported without a version\n"
               "/usr/lib/python3/dist-packages/gi/__init__.py:3: DeprecationWarning: theirs\n")
    assert our_warnings(console) == console.splitlines()[:2]


def test_a_warning_is_one_line_even_after_our_path() -> None:
    """GIMP names a crashed plug-in by path on a line of its own; a later line is not ours."""
    console = (f"Plug-in crashed: \"neural-style-transfer.py\"\n({GIMP_PLUGIN})\n\n"
               "/tmp/nst-x/script.py:53: ResourceWarning: unclosed file\n")
    assert our_warnings(console) == []


def test_glib_messages_count_only_from_our_plugin_process() -> None:
    ours = ("(neural-style-transfer.py:4242): Gtk-WARNING **: 19:40:00.123: Duplicate "
            "mnemonic")
    console = (f"{ours}\n(gimp-3.2:17): GLib-GObject-CRITICAL **: 19:40:01.000: theirs\n"
               "(neural-style-transfer.py:4242): Gtk-DEBUG: 19:40:02.000: not a warning\n"
               "(neural-style-transfer.py:4242): LibGimp-WARNING **: 19:40:03.000: "
               "neural-style-transfer.py: gimp_flush(): error: Broken pipe\n")
    assert our_warnings(console) == [ours]


def test_recorded_qt_warnings_all_count() -> None:
    recorded = "Qt: QLayout: already has a layout (from /x/neural_style_transfer/dialog.py:9)\n"
    assert our_warnings("krita.general: their own warning\n", recorded) == [recorded.strip()]


NOISY_MODULE = """\
import warnings


def call():
    warnings.warn("an old API", DeprecationWarning, stacklevel=1)
"""

IMPORT_NOISY = """\
import os
import sys

sys.path.insert(0, os.path.join(os.environ["HOME"], "lib", "neural_style_transfer"))
import noisy

noisy.call()
"""


# Also speaks as our plug-in's process would (GIMP runs each plug-in as a process named after its
# file), through GLib's own logger, so the pattern meets GLib's real format.
GIMP_WARN = IMPORT_NOISY + """
from gi.repository import GLib

GLib.set_prgname("neural-style-transfer.py")
GLib.log_default_handler("Gtk", GLib.LogLevelFlags.LEVEL_WARNING, "a GTK warning of ours", None)
"""


def test_python_and_glib_warnings_from_our_code_fail_a_gimp_run(editor_chroot: Path) -> None:
    """Python hides DeprecationWarning outside __main__; the harness shows it and fails."""
    with pytest.raises(EditorScriptError, match="our plugin warned") as failure:
        run_gimp(editor_chroot, GIMP_WARN,
                 home_files={"lib/neural_style_transfer/noisy.py": NOISY_MODULE}, timeout=240)
    assert "noisy.py:5: DeprecationWarning: an old API" in str(failure.value)
    assert "Gtk-WARNING **" in str(failure.value)
    assert "a GTK warning of ours" in str(failure.value)


QT_MODULE = """\
from PyQt5 import QtCore


def call(message):
    QtCore.qWarning(message)
"""

QT_WARN = """\
import os
import sys

from PyQt5 import QtCore

QtCore.qWarning("a warning of the test's own")  # not ours: no plugin file on the stack
sys.path.insert(0, os.path.join(os.environ["HOME"], "lib", "neural_style_transfer"))
import qtnoisy

qtnoisy.call("a warning from our code")
"""


def test_a_qt_warning_from_our_code_fails_a_krita_run(editor_chroot: Path) -> None:
    with pytest.raises(EditorScriptError, match="our plugin warned") as failure:
        run_krita(editor_chroot, QT_WARN,
                  home_files={"lib/neural_style_transfer/qtnoisy.py": QT_MODULE}, timeout=240)
    assert "a warning from our code" in str(failure.value)
    assert "of the test's own" not in str(failure.value).split("our plugin warned")[1]
