"""The thin Krita-facing layer: one action in the Filter menu that opens the dialog."""

from __future__ import annotations

from krita import Extension, Krita

from .qt import QtWidgets

ACTION_ID = "neural_style_transfer"
ACTION_TEXT = "Neural Style Transfer..."


class NeuralStyleTransferExtension(Extension):
    def __init__(self, parent) -> None:
        super().__init__(parent)
        self._dialogs: list = []  # keep open dialogs alive (they are non-modal)

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # Krita's name
        # `window` is deleted after this call: look up the active window when triggered.
        action = window.createAction(ACTION_ID, ACTION_TEXT, "filter")
        action.setToolTip("Repaint the active layer in the style of another image")
        action.triggered.connect(self.open_dialog)

    def open_dialog(self) -> None:
        from .dialog import StyleTransferDialog  # deferred: only needed once the artist asks

        app = Krita.instance()
        window = app.activeWindow()
        parent = window.qwindow() if window is not None else None
        document = app.activeDocument()
        node = document.activeNode() if document is not None else None
        if node is None:
            QtWidgets.QMessageBox.information(
                parent, "Neural Style Transfer", "Open an image and select a layer first."
            )
            return
        self._dialogs = [d for d in self._dialogs if d.is_busy()]
        dialog = StyleTransferDialog(document, node, parent)
        self._dialogs.append(dialog)
        dialog.show()
