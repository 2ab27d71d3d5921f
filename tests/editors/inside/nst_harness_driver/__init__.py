"""A pykrita plugin the harness installs in Krita's GUI: runs the action script in the GUI."""
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
