"""The Neural Style Transfer dialog: choose a style and options, watch it run, get a layer.

Non-modal, so Krita stays usable while the server works. The network runs in worker threads;
every Krita object (document, layers) is touched here, in slots on the UI thread.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from krita import Krita

from .job import add_layer_above, is_in_document, read_request, write_pixels
from .options import push_recent
from .pixels import UnsupportedColor
from .qt import QtCore, QtGui, QtWidgets
from .shared import nst_client, nst_launcher, nst_options
from .worker import CallThread, JobWorker

SETTINGS_GROUP = "neural_style_transfer"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"
THUMB = 72


def _read_setting(key: str, default):
    raw = Krita.instance().readSetting(SETTINGS_GROUP, key, "")
    try:
        return json.loads(raw) if raw else default
    except ValueError:
        return default


def _write_setting(key: str, value) -> None:
    Krita.instance().writeSetting(SETTINGS_GROUP, key, json.dumps(value))


def _probe_server() -> dict | None:
    """The running server's health, or None when none answers. Worker thread."""
    client = nst_launcher.reachable_client()
    return None if client is None else client.health()


def _start_server() -> dict:
    """Start the server if none answers; its health. Worker thread."""
    return nst_launcher.ensure_server().health()


class StyleTransferDialog(QtWidgets.QDialog):
    """Runs one style transfer on ``node`` of ``document``."""

    def __init__(self, document, node, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Neural Style Transfer")
        self.setObjectName("neural_style_transfer_dialog")
        self.document = document
        self.source = node
        self.style_path: str | None = None
        self.worker: JobWorker | None = None
        self.preview_layer = None
        self.request = None
        self.resume_id: str | None = None
        #: The server stopped answering mid-job: only then is Resume offered.
        self.server_gone = False
        self._threads: list[QtCore.QThread] = []
        self._temp = tempfile.TemporaryDirectory(prefix="nst-style-")
        self._build()
        self._load_options()
        self._check_server()

    # -------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)

        style_box = QtWidgets.QGroupBox("Style")
        style_layout = QtWidgets.QVBoxLayout(style_box)
        self.recent = QtWidgets.QListWidget()
        self.recent.setObjectName("recent_styles")
        self.recent.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.recent.setIconSize(QtCore.QSize(THUMB, THUMB))
        self.recent.setFixedHeight(THUMB + 40)
        self.recent.setFlow(QtWidgets.QListView.Flow.LeftToRight)
        self.recent.setWrapping(False)
        self.recent.setToolTip("Recently used styles")
        self.recent.hide()  # until there is a style to show: not an empty panel on first use
        self.recent.itemClicked.connect(
            lambda item: self._set_style(item.data(QtCore.Qt.ItemDataRole.UserRole), True)
        )
        style_layout.addWidget(self.recent)
        row = QtWidgets.QHBoxLayout()
        browse = QtWidgets.QPushButton("Choose image file...")
        browse.clicked.connect(self._browse)
        row.addWidget(browse)
        self.documents = QtWidgets.QComboBox()
        self.documents.setToolTip("Use another open image as the style")
        self.documents.addItem("or use an open image...", None)
        for doc in Krita.instance().documents():
            if doc != self.document:  # libkis compares the underlying documents
                self.documents.addItem(Path(doc.fileName() or doc.name()).name or "Untitled", doc)
        self.documents.setEnabled(self.documents.count() > 1)
        self.documents.activated.connect(self._use_document)
        row.addWidget(self.documents)
        style_layout.addLayout(row)
        self.style_label = QtWidgets.QLabel("No style chosen")
        self.style_label.setWordWrap(True)
        style_layout.addWidget(self.style_label)
        layout.addWidget(style_box)

        form = QtWidgets.QFormLayout()
        self.strength = self._slider("How strongly the style's textures are applied")
        self.content = self._slider("How much of your layer's shapes are kept")
        self.preset = QtWidgets.QComboBox()
        for name in nst_options.PRESETS:
            self.preset.addItem(nst_options.PRESET_LABELS[name], name)
        self.preset.setToolTip(nst_options.PRESET_HINT)
        self.preserve = QtWidgets.QCheckBox("Keep the layer's own colours")
        self.selection_only = QtWidgets.QCheckBox("Only inside the selection")
        has_selection = self.document.selection() is not None
        self.selection_only.setEnabled(has_selection)
        self.selection_only.setChecked(has_selection)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setSpecialValueText("Random")
        self.seed.setToolTip("Random gives a new result each time; a number repeats a result")
        form.addRow("Style strength", self.strength)
        form.addRow("Content kept", self.content)
        form.addRow("Quality", self.preset)
        form.addRow("", self.preserve)
        form.addRow("", self.selection_only)
        form.addRow("Seed", self.seed)
        layout.addLayout(form)

        self.server_line = QtWidgets.QLabel("Server: checking...")
        self.server_line.setObjectName("server_status")
        layout.addWidget(self.server_line)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.message = QtWidgets.QLabel("")
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)

        buttons = QtWidgets.QDialogButtonBox()
        box = QtWidgets.QDialogButtonBox
        self.run_button = buttons.addButton("Stylize", box.ButtonRole.AcceptRole)
        self.resume_button = buttons.addButton("Resume", box.ButtonRole.ActionRole)
        self.start_server_button = buttons.addButton("Start server", box.ButtonRole.ActionRole)
        self.start_server_button.setObjectName("start_server")
        self.cancel_button = buttons.addButton(box.StandardButton.Cancel)
        self.resume_button.hide()
        self.start_server_button.hide()  # until the server is found not running
        self.start_server_button.clicked.connect(self.start_server)
        self.run_button.clicked.connect(self.start)
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        layout.addWidget(buttons)
        self._fill_recent()

    def _slider(self, tip: str) -> QtWidgets.QSlider:
        slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        slider.setRange(0, 100)
        slider.setValue(50)
        slider.setToolTip(tip)
        return slider

    def _fill_recent(self, chosen: str | None = None) -> None:
        """The recent styles as thumbnails, the ``chosen`` one first and selected (a style
        joins the saved list when it is used), hidden while there are none."""
        self.recent.clear()
        saved = _read_setting("recent_styles", [])
        for path in push_recent(saved, chosen) if chosen else saved:
            if not Path(path).is_file():
                continue
            pixmap = QtGui.QPixmap(path)
            if pixmap.isNull():
                continue
            item = QtWidgets.QListWidgetItem(
                QtGui.QIcon(
                    pixmap.scaled(
                        THUMB,
                        THUMB,
                        QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                        QtCore.Qt.TransformationMode.SmoothTransformation,
                    )
                ),
                "",
            )
            item.setToolTip(path)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, path)
            self.recent.addItem(item)
            item.setSelected(path == chosen)
        self.recent.setVisible(self.recent.count() > 0)

    # ------------------------------------------------------------------------------ options
    def _load_options(self) -> None:
        saved = _read_setting("options", {})
        self.strength.setValue(int(saved.get("strength", 50)))
        self.content.setValue(int(saved.get("content_kept", 50)))
        preset = self.preset.findData(saved.get("preset", nst_options.DEFAULT_PRESET))
        self.preset.setCurrentIndex(max(preset, 0))
        self.preserve.setChecked(bool(saved.get("preserve_colors", False)))
        self.seed.setValue(int(saved.get("seed", 0)))
        recent = _read_setting("recent_styles", [])
        if recent and Path(recent[0]).is_file():
            self._set_style(recent[0], from_recent=True)

    def _options(self) -> dict:
        return {
            "strength": self.strength.value(),
            "content_kept": self.content.value(),
            "preset": self.preset.currentData(),
            "preserve_colors": self.preserve.isChecked(),
            "seed": self.seed.value(),
        }

    def _set_style(self, path: str, from_recent: bool = False) -> None:
        self.style_path = path
        self.style_label.setText(f"Style: {path}")
        if not from_recent:  # a new file: show it among the recent ones, selected
            self._fill_recent(chosen=path)

    def _browse(self) -> None:
        start = str(Path(self.style_path).parent) if self.style_path else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Choose a style image", start, IMAGE_FILTER
        )
        if path:
            self._set_style(path)

    def _use_document(self, index: int) -> None:
        doc = self.documents.itemData(index)
        if doc is None:
            return
        name = Path(self.documents.itemText(index)).stem or "open image"
        path = str(Path(self._temp.name) / f"{name}.png")
        # The engine resizes styles to its working size: 1024 px keeps every preset sharp.
        scale = min(1.0, 1024 / max(doc.width(), doc.height(), 1))
        width, height = max(1, int(doc.width() * scale)), max(1, int(doc.height() * scale))
        doc.thumbnail(width, height).save(path)
        self._set_style(path)

    # ------------------------------------------------------------------------------- server
    def _check_server(self) -> None:
        self._start_thread(CallThread(_probe_server), self._show_probe, self._show_server_error)

    def _show_probe(self, health: dict | None) -> None:
        if health is None:
            self.server_line.setText(nst_launcher.NOT_RUNNING)
            self.start_server_button.setVisible(self.worker is None)
            self.message.setText("Press Start server, or just Stylize: it starts the server.")
            return
        self._show_health(health)

    def _show_health(self, health: dict) -> None:
        self.start_server_button.hide()
        self.server_line.setText(nst_options.describe_health(health))

    def _show_server_error(self, exc: Exception) -> None:
        self.server_line.setText("Server: not reachable")
        self.start_server_button.setEnabled(True)
        self.message.setText(str(exc))

    def start_server(self) -> None:
        """Start the server (off the UI thread) without running a job."""
        self.start_server_button.setEnabled(False)
        self.server_line.setText(nst_launcher.STARTING)
        self.message.setText("")
        self._start_thread(CallThread(_start_server), self._show_probe, self._show_server_error)

    def _server_starting(self, text: str) -> None:
        self.start_server_button.hide()
        self.server_line.setText(text)
        self.message.setText(text)

    def _server_ready(self) -> None:
        self.server_line.setText("Server connected")
        self.message.setText("Sending the layer to the server...")

    def _start_thread(self, thread, on_done, on_failed) -> None:
        self._threads.append(thread)
        thread.done.connect(on_done)
        thread.failed.connect(on_failed)
        thread.finished.connect(lambda: self._threads.remove(thread))
        thread.start()

    # ---------------------------------------------------------------------------------- run
    def start(self) -> None:
        """Read the layer (UI thread), add the locked preview layer, start the worker."""
        if self.worker is not None:
            return
        if not self.style_path:
            self.message.setText("Choose a style image first.")
            return
        try:
            options = self._options()
            settings = nst_options.engine_settings(
                options["preset"],
                options["strength"],
                options["content_kept"],
                options["preserve_colors"],
                options["seed"] or None,
            )
            self.request = read_request(
                self.document,
                self.source,
                [self.style_path],
                settings,
                self.selection_only.isChecked(),
            )
        except (nst_client.NSTClientError, UnsupportedColor) as exc:
            self.message.setText(str(exc))
            return
        _write_setting("options", options)
        _write_setting(
            "recent_styles", push_recent(_read_setting("recent_styles", []), self.style_path)
        )
        self._run(job_id=None)

    def resume(self) -> None:
        """Pick up the job the server was running when it stopped answering."""
        if self.resume_id and self.request is not None and self.worker is None:
            self._run(job_id=self.resume_id)

    def _run(self, job_id: str | None) -> None:
        if self.preview_layer is None or not is_in_document(self.document, self.preview_layer):
            self.preview_layer = add_layer_above(
                self.document, self.source, nst_options.preview_layer_name(self.style_path)
            )
            self.preview_layer.setLocked(True)
        self.server_gone = False
        self.worker = JobWorker(
            self.request,
            job_id=job_id,
            preview_size=min(512, max(self.request.width, self.request.height)),
        )
        self.worker.server_starting.connect(self._server_starting)
        self.worker.server_ready.connect(self._server_ready)
        self.worker.job_started.connect(self._job_started)
        self.worker.progress.connect(self._progress)
        self.worker.preview.connect(self._preview)
        self.worker.succeeded.connect(self._succeeded)
        self.worker.failed.connect(self._failed)
        self.worker.finished.connect(self._worker_finished)
        self._set_running(True)
        self.start_server_button.hide()
        self.message.setText("Sending the layer to the server...")
        self.worker.start()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        # Only after the server stopped answering: a job that ended (well or not) has nothing
        # to resume, whichever of the worker's last signals Qt delivers first.
        self.resume_button.setVisible(self.server_gone and not running)
        self.cancel_button.setText("Cancel" if running else "Close")

    def _job_started(self, job_id: str) -> None:
        self.resume_id = job_id

    def _progress(self, status: dict) -> None:
        if status.get("state") != "queued":
            self.progress.setValue(int(status.get("percent") or 0))
        self.message.setText(nst_options.describe_progress(status))

    def _preview(self, pixels: bytes) -> None:
        if self.preview_layer is not None and is_in_document(self.document, self.preview_layer):
            write_pixels(self.document, self.preview_layer, pixels)
        if self.worker is not None:
            self.worker.preview_shown()  # only now is the next preview worth its cost

    def _succeeded(self, data: bytes) -> None:
        name = nst_options.layer_name(self.style_path)
        layer = self.preview_layer
        if layer is not None and is_in_document(self.document, layer):
            # The preview layer becomes the result: its "Add Layer" is the one undo step.
            write_pixels(self.document, layer, data)
            layer.setName(name)
            layer.setLocked(False)
        else:
            add_layer_above(self.document, self.source, name, data)
        self.preview_layer = None
        self.resume_id = None
        self.progress.setValue(100)
        self.message.setText(f"Done: added the layer '{name}'.")
        QtCore.QTimer.singleShot(600, self.accept)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, nst_client.ServerGone):
            self.resume_id = exc.job_id
            self.server_gone = True
            self._set_running(self.worker is not None)  # Resume shows once the worker is done
            self.message.setText(f"{exc}\nPress Resume: it starts the server again if needed.")
            return  # keep the preview layer: the job may still finish
        self.resume_id = None
        self._remove_preview()
        if isinstance(exc, nst_launcher.LaunchError):  # the message has the log and command
            self.server_line.setText(nst_launcher.NOT_RUNNING)
            self.start_server_button.show()
        if isinstance(exc, nst_client.JobCancelled):
            self.progress.setValue(0)
            self.message.setText("Cancelled. Your layer is unchanged.")
        else:
            self.message.setText(f"{exc}\nYour layer is unchanged.")

    def _worker_finished(self) -> None:
        self.worker = None
        self._set_running(False)

    def _remove_preview(self) -> None:
        if self.preview_layer is not None and is_in_document(self.document, self.preview_layer):
            self.preview_layer.setLocked(False)
            self.preview_layer.remove()
            self.document.refreshProjection()
        self.preview_layer = None

    def cancel_or_close(self) -> None:
        if self.worker is not None:
            self.message.setText("Cancelling...")
            self.worker.cancel()
        else:
            self._remove_preview()
            self.reject()

    def closeEvent(self, event) -> None:  # Qt's name
        if self.worker is not None:
            # Never wait for the worker here: that would freeze Krita until its next poll. It
            # stops on its own, and _failed then removes the preview layer.
            self.worker.cancel()
        else:
            self._remove_preview()
        super().closeEvent(event)

    def is_busy(self) -> bool:
        """Shown, or closed while its job is still being cancelled (must be kept alive)."""
        return self.isVisible() or self.worker is not None
