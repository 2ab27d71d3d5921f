"""The one place that picks the Qt binding: PyQt5 for Krita 5, PyQt6 for Krita 6.

Everything else imports ``QtCore``, ``QtGui``, ``QtWidgets`` and ``Signal`` from here, and uses
fully scoped enum names (``Qt.AlignmentFlag.AlignLeft``), which both bindings accept.
"""

from __future__ import annotations


def _krita_major() -> int:
    try:
        from krita import Krita

        return int(Krita.instance().version().split(".")[0])
    except Exception:  # outside Krita (unit tests) or an odd version string
        return 5


if _krita_major() >= 6:
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    from PyQt5 import QtCore, QtGui, QtWidgets

Signal = QtCore.pyqtSignal

__all__ = ["QtCore", "QtGui", "QtWidgets", "Signal"]
