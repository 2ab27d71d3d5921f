"""Background threads, so Krita never waits on the network.

Workers only talk to the server and decode images (QImage is safe off the UI thread); every Krita
object is touched by the dialog in slots that Qt runs on the UI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .pixels import rgba8_to_layout
from .qt import QtCore, QtGui, Signal
from .shared import nst_client, nst_launcher
from .shared import nst_previews as previews


def decode_preview(
    png: bytes, width: int, height: int, layout: nst_client.PixelLayout
) -> bytes | None:
    """A server preview PNG scaled to the canvas, in the layer's own pixel layout."""
    image = QtGui.QImage.fromData(png)
    if image.isNull():
        return None
    image = image.scaled(
        width,
        height,
        QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
        QtCore.Qt.TransformationMode.SmoothTransformation,
    ).convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    bits = image.constBits()
    bits.setsize(image.bytesPerLine() * image.height())
    return rgba8_to_layout(bytes(bits), layout)


class CallThread(QtCore.QThread):
    """Run one blocking call (e.g. ``client.health``) and report its value or exception."""

    done = Signal(object)
    failed = Signal(object)

    def __init__(self, call: Callable[[], object], parent=None) -> None:
        super().__init__(parent)
        self._call = call

    def run(self) -> None:
        try:
            value = self._call()
        except Exception as exc:  # handed to the UI thread, which shows it
            self.failed.emit(exc)
        else:
            self.done.emit(value)


class JobWorker(QtCore.QThread):
    """Start the server if none answers, submit (or resume) a job, relay progress and
    previews, deliver the result bytes."""

    server_starting = Signal(str)  # what to show while the server starts
    server_ready = Signal()  # the server answers; the job is sent next
    job_started = Signal(str)
    progress = Signal(object)  # status dict
    preview = Signal(object)  # bytes in the layer's layout
    succeeded = Signal(object)  # result bytes
    failed = Signal(object)  # an exception; ServerGone carries the job id

    def __init__(
        self,
        request: nst_client.StyleRequest,
        job_id: str | None = None,
        preview_size: int = 512,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.client: nst_client.Client | None = None
        self.request = request
        self.job_id = job_id
        self.preview_size = preview_size
        self._cancel = threading.Event()
        self._pacer = previews.PreviewPacer()

    def cancel(self) -> None:
        """Thread-safe: the job is cancelled on the server at the next poll."""
        self._cancel.set()

    def preview_shown(self) -> None:
        """Thread-safe: the last preview is on the canvas, so the next may be fetched."""
        self._pacer.shown()

    def run(self) -> None:
        try:
            self.client = nst_launcher.ensure_server(on_status=self.server_starting.emit)
            self.server_ready.emit()
            if self._cancel.is_set():  # pressed while the server started: no job at all
                raise nst_client.JobCancelled(self.job_id or "")
            data = nst_client.run_job(
                self.client,
                self.request,
                on_status=self._on_status,
                should_cancel=self._cancel.is_set,
                job_id=self.job_id,
                on_job_id=self._on_job_id,
            )
        except Exception as exc:
            self.failed.emit(exc)
        else:
            self.succeeded.emit(data)

    def _on_job_id(self, job_id: str) -> None:
        self.job_id = job_id
        self.job_started.emit(job_id)

    def _on_status(self, status: dict) -> None:
        self.progress.emit(status)
        if status.get("state") != "running" or not self._pacer.due():
            return
        png = previews.fetch(self.client, self.job_id, self.preview_size)
        if png:
            request = self.request
            pixels = decode_preview(png, request.width, request.height, request.layout)
            if pixels is not None:
                self._pacer.in_flight()
                self.preview.emit(pixels)
