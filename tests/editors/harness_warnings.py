"""Warnings from our plugins in an editor's output: each one fails the run that printed it.

A plugin that warns in one editor version and not the other uses an API the way that version
did not mean (a deprecated call, a widget packed twice, a property set to the wrong type), and
the next version turns the warning into a failure. Only warnings our code causes count: both
editors print plenty of their own, which are not ours to fix. What is ours:

- Python warnings (DeprecationWarning and the like) whose file is in our plugin's folder. The
  harness runs the editors with ``PYTHONWARNINGS=default``: Python hides DeprecationWarning
  outside ``__main__`` by default, and a plugin is never ``__main__``.
- GLib, GTK and GIMP log messages of level WARNING or CRITICAL printed by our GIMP plug-in's
  own process (GIMP runs each plug-in as a process named after its file), except libgimp's
  "gimp_flush(): error: Broken pipe": GIMP 3.0 closes a plug-in's pipe once the procedure has
  returned, and libgimp's last write on the way out then fails, in any plug-in (seen at random
  with ours, after success and error returns alike; not seen with GIMP 3.2).
- Qt warnings raised while our code is on the Python stack (Krita runs its plugins in its own
  process, so the process says nothing). ``inside/nst_harness_entry.py`` records them in the
  control folder; Krita's other Qt warnings are left alone.
"""

from __future__ import annotations

import re

#: Folder and process names of our plugins, as installed (Krita's package, GIMP's plug-in).
PLUGIN_NAMES = ("neural_style_transfer", "neural-style-transfer")
#: The control-folder file where the entry script records Qt warnings our code caused.
QT_WARNINGS_FILE = "qt-warnings.txt"

# "/home/.../neural_style_transfer/dialog.py:12: DeprecationWarning: ..." (warnings' format)
_PYTHON_WARNING = re.compile(r"^(?P<file>\S[^:\n]*\.py):\d+: \w*Warning: .*$", re.MULTILINE)
# "(neural-style-transfer.py:4242): Gtk-WARNING **: 19:40:00.123: ..." (GLib's default format)
_GLIB_MESSAGE = re.compile(r"^\((?P<program>[^:()\s]+):\d+\): [\w-]+-(?:WARNING|CRITICAL) "
                           r"\*\*.*$", re.MULTILINE)


# libgimp in GIMP 3.0, writing to a pipe GIMP already closed (see above): GIMP's, not ours.
_GIMP_CLOSED_PIPE = "gimp_flush(): error: Broken pipe"


def _ours(path: str) -> bool:
    return any(name in path for name in PLUGIN_NAMES)


def our_warnings(console: str, qt_warnings: str = "") -> list[str]:
    """The lines of ``console`` (and the recorded Qt warnings) that are warnings from our code."""
    found = [m.group(0) for m in _PYTHON_WARNING.finditer(console) if _ours(m.group("file"))]
    found += [m.group(0) for m in _GLIB_MESSAGE.finditer(console)
              if _ours(m.group("program")) and _GIMP_CLOSED_PIPE not in m.group(0)]
    found += [line for line in qt_warnings.splitlines() if line.strip()]
    return found
