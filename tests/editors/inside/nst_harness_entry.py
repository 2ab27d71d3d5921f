"""Runs inside the editor (copied into each workspace): run the test script, record the end.

The script's globals are kept for the life of the process (runpy would clear them when it
returns), so timers and slots it leaves behind in a GUI still find their names; exceptions they
raise later are recorded too, through sys.excepthook, so they fail the test.
"""
import os
import sys
import traceback

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
