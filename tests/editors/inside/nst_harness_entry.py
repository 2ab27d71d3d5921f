"""Runs inside the editor (copied into each workspace): run the test script, record the end.

The script's globals are kept for the life of the process (runpy would clear them when it
returns), so timers and slots it leaves behind in a GUI still find their names; exceptions they
raise later are recorded too, through sys.excepthook, so they fail the test. In Krita, Qt
warnings raised while our plugin's code is on the stack are recorded as well (see
harness_warnings.py, which keeps the names below in step).
"""
import os
import sys
import traceback

_namespaces = []
_PLUGIN_NAMES = ("neural_style_transfer", "neural-style-transfer")
_QT_WARNINGS_FILE = "qt-warnings.txt"


def main(*_args):
    ctl = os.environ["NST_CTL"]
    script = os.environ["NST_SCRIPT"]
    previous_hook = sys.excepthook

    def hook(kind, value, tb):
        _record(ctl, "traceback.txt", "".join(traceback.format_exception(kind, value, tb)))
        previous_hook(kind, value, tb)

    sys.excepthook = hook
    if "krita" in sys.modules:
        _watch_qt_warnings(ctl)
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


def _record(ctl, name, text, mode="w"):
    with open(os.path.join(ctl, name), mode) as handle:
        handle.write(text)


def _watch_qt_warnings(ctl):
    """Record Qt warnings whose Python stack passes through our plugin; print every message.

    Krita runs plugins in its own process, so the stack is the only way to tell which Qt
    warnings are ours. The message is printed as Krita would, so the console stays complete.
    """
    from PyQt5 import QtCore  # the harness drives Krita 5, whose Python has PyQt5

    ignored = (QtCore.QtDebugMsg, QtCore.QtInfoMsg)

    def handler(kind, context, message):
        sys.stderr.write(message + "\n")
        if kind in ignored:
            return
        ours = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()
                if any(name in f.filename for name in _PLUGIN_NAMES)]
        if ours:
            _record(ctl, _QT_WARNINGS_FILE, f"Qt: {message} (from {ours[-1]})\n", "a")

    _namespaces.append(handler)  # PyQt keeps no reference of its own
    QtCore.qInstallMessageHandler(handler)
