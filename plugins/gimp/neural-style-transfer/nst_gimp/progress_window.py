"""The plug-in's own progress window for runs the artist started: status, a bar and Cancel.

GIMP's status-bar progress has a Cancel button too, but it kills the plug-in: no code of ours
runs after it, so the preview layer stays in the image and only the watchdog cancels the
server's job. This window's Cancel (or closing it, or Escape) only asks to stop; the run then
cancels the job, removes the preview and ends with CANCEL itself (see ``background``).

Only GTK here, on the main thread; the window knows nothing of GIMP's images or the server.
"""

from __future__ import annotations

from collections.abc import Callable

from . import ui

CANCELLING = "Cancelling..."


class ProgressWindow:
    """A small dialog, transient for GIMP's window, that says how the job goes."""

    def __init__(self, program: str, title: str, on_cancel: Callable[[], None]) -> None:
        GimpUi, Gtk = ui.toolkit(program)
        self._on_cancel = on_cancel
        self._dialog = Gtk.Dialog(title=title)
        self._dialog.set_resizable(False)
        area = self._dialog.get_content_area()
        area.set_border_width(12)
        area.set_spacing(8)
        self._label = Gtk.Label(label=title, xalign=0.0)
        self._label.set_line_wrap(True)
        self._label.set_width_chars(44)
        self._label.set_max_width_chars(44)
        self._bar = Gtk.ProgressBar()
        area.pack_start(self._label, False, False, 0)
        area.pack_start(self._bar, False, False, 0)
        self._cancel = self._dialog.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        # Every way out of the window (the button, Escape, its close button) is a response;
        # the window itself stays until the run has stopped, saying "Cancelling...".
        self._dialog.connect("response", self._respond)
        self._dialog.connect("delete-event", lambda *_args: True)
        GimpUi.window_set_transient(self._dialog)
        self._dialog.show_all()
        self._cancel.grab_focus()  # Return or Space cancels, as on GIMP's own progress dialogs

    def set_text(self, text: str) -> None:
        """Show ``text`` (the job's state), unless Cancel was pressed: that says "Cancelling"."""
        if self._cancel.get_sensitive():
            self._label.set_text(text)

    def set_fraction(self, fraction: float) -> None:
        """The bar's fill, 0.0 to 1.0 (clamped: the server's percent may overshoot)."""
        self._bar.set_fraction(min(1.0, max(0.0, fraction)))

    def close(self) -> None:
        """Take the window away (once the run has stopped, whatever its end)."""
        self._dialog.destroy()

    def _respond(self, _dialog, _response: int) -> None:
        if not self._cancel.get_sensitive():
            return  # asked already
        self._label.set_text(CANCELLING)
        self._cancel.set_sensitive(False)
        self._on_cancel()
