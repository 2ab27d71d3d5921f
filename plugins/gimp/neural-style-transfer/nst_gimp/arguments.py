"""The procedure's arguments: declared once for GIMP's PDB, its dialog and scripts alike.

Declaring the choices as PDB arguments (not as widgets of our own) is what gives the plug-in
GIMP's remembered values, its generated dialog (GimpUi.ProcedureDialog), and a documented
non-interactive call from the Python-Fu console and batch mode.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from gi.repository import Gimp, GLib, GObject

from . import ui
from .shared import nst_client, nst_launcher, nst_options

PROCEDURE = "python-fu-neural-style-transfer"
MENU_PATH = "<Image>/Filters/Artistic"
TITLE = "Neural Style Transfer"

# What the dialog shows; "extra-settings" is for scripts only.
DIALOG_ARGUMENTS = [
    "style",
    "strength",
    "content-kept",
    "preset",
    "preserve-colors",
    "selection-only",
    "seed",
]

HELP = """\
Repaints the active layer in the style of an image, with the neural style transfer server running
on this computer (the plug-in starts it when it is not running). The result is a new layer above
the active one, named after the style; the active layer is not changed.

Arguments: style (the style image file); strength and content-kept (0-100, 50 is the default
balance, each 25 steps multiplies by ten); preset (draft, balanced, high, full or paper: full works
at the layer's own size instead of upscaling a 1024 px result); preserve-colors
(keep the layer's own colours); selection-only (stylise only inside the selection, transparent
outside; with nothing selected the whole layer); seed (0 for a new random result each run);
extra-settings (a JSON object of further server settings, e.g. {"size": 512}, applied over the
others). Returns the new layer. The server is found through NST_SERVER_URL and NST_TOKEN, or the
connection file the server writes to the user's config folder."""

_FLAGS = GObject.ParamFlags.READWRITE
# Each label's mnemonic (the letter after "_", pressed with Alt) must differ from the others'
# and from those of the dialog's own buttons: _Help, _Reset, _Cancel, _OK, _Load Saved Settings,
# _Save Settings. GIMP logs "duplicate mnemonic" for a clash, and Alt+C pressed Cancel.


class ChoiceError(ValueError):
    """An argument cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Choices:
    """The arguments of one run, turned into what the server needs."""

    style: str
    settings: dict
    selection_only: bool


def define(procedure: Gimp.ImageProcedure) -> None:
    """Menu entry, documentation and arguments of the procedure."""
    procedure.set_image_types("RGB*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
    procedure.set_menu_label("Neural Style _Transfer...")
    procedure.add_menu_path(MENU_PATH)
    procedure.set_documentation("Repaint the layer in the style of an image", HELP, PROCEDURE)
    procedure.set_attribution("Neural Style Transfer", "Neural Style Transfer", "2026")

    procedure.add_file_argument(
        "style",
        "St_yle image",
        "The picture whose style is painted onto the layer",
        Gimp.FileChooserAction.OPEN,
        True,
        None,
        _FLAGS,
    )
    procedure.add_int_argument(
        "strength",
        "Style s_trength",
        "How strongly the style's textures are applied (0-100)",
        0,
        100,
        50,
        _FLAGS,
    )
    procedure.add_int_argument(
        "content-kept",
        "Content _kept",
        "How much of the layer's shapes is kept (0-100)",
        0,
        100,
        50,
        _FLAGS,
    )
    presets = Gimp.Choice.new()
    for index, name in enumerate(nst_options.PRESETS):
        presets.add(name, index, nst_options.PRESET_LABELS[name], "")
    procedure.add_choice_argument(
        "preset",
        "_Quality",
        nst_options.PRESET_HINT,
        presets,
        nst_options.DEFAULT_PRESET,
        _FLAGS,
    )
    procedure.add_boolean_argument(
        "preserve-colors",
        "Keep the layer's o_wn colours",
        "Take only the style's textures, not its colours",
        False,
        _FLAGS,
    )
    procedure.add_boolean_argument(
        "selection-only",
        "Only _inside the selection",
        "Transparent outside the selection (the whole layer when nothing is selected)",
        False,
        _FLAGS,
    )
    procedure.add_int_argument(
        "seed",
        "S_eed (0 = random)",
        "0 gives a new result each run; any other number repeats a result",
        0,
        2**31 - 1,
        0,
        _FLAGS,
    )
    procedure.add_string_argument(
        "extra-settings",
        "Extra server settings",
        'JSON object of further server settings applied over the others, e.g. {"size": 512}',
        "",
        _FLAGS,
    )
    procedure.add_layer_return_value("layer", "Layer", "The new stylised layer", False, _FLAGS)


def read_choices(config: Gimp.ProcedureConfig) -> Choices:
    """The run's choices from the procedure's config (filled by the dialog or the caller)."""
    style = config.get_property("style")
    path = style.get_path() if style is not None else None
    if not path:
        raise ChoiceError("Choose a style image (a PNG, JPEG, TIFF or WebP file) first.")
    settings = nst_options.engine_settings(
        config.get_property("preset"),
        config.get_property("strength"),
        config.get_property("content-kept"),
        config.get_property("preserve-colors"),
        config.get_property("seed"),
    )
    settings.update(_extra_settings(config.get_property("extra-settings")))
    return Choices(path, settings, bool(config.get_property("selection-only")))


def _extra_settings(text: str | None) -> dict:
    if not (text or "").strip():
        return {}
    try:
        extra = json.loads(text)
    except ValueError as exc:
        raise ChoiceError(
            f"extra-settings is not valid JSON ({exc}); pass e.g. '{{\"size\": 512}}'."
        ) from None
    if not isinstance(extra, dict):
        raise ChoiceError("extra-settings must be a JSON object, e.g. '{\"size\": 512}'.")
    return extra


def server_status() -> tuple[str, bool]:
    """One line for the dialog, so a stopped server is noticed before pressing OK: the shared
    status line, or what happens when it is not running; and whether it is running."""
    try:
        client = nst_launcher.reachable_client()
        if client is None:
            return f"{nst_launcher.NOT_RUNNING}: OK starts it, or press Start server now.", False
        return nst_options.describe_health(client.health()), True
    except nst_client.NSTClientError as exc:
        return str(exc), False


def _start_server(button, label) -> None:
    """Start the server on a thread of its own; the dialog stays usable, and its label says
    how the start went (GLib.idle_add: Gtk is only touched from the dialog's thread)."""
    button.set_sensitive(False)
    label.set_text(nst_launcher.STARTING)

    def finish(text: str, running: bool) -> bool:
        label.set_text(text)
        button.set_visible(not running)
        button.set_sensitive(True)
        return False  # once

    def start() -> None:
        try:
            text, running = nst_options.describe_health(nst_launcher.ensure_server().health()), True
        except nst_client.NSTClientError as exc:
            text, running = str(exc), False
        GLib.idle_add(finish, text, running)

    # A daemon: Cancel may end the plug-in mid-start; the server, detached, starts anyway.
    threading.Thread(target=start, name="nst-start-server", daemon=True).start()


def show_dialog(procedure: Gimp.ImageProcedure, config: Gimp.ProcedureConfig) -> bool:
    """GIMP's own dialog for the arguments; True when the artist pressed OK."""
    GimpUi, Gtk = ui.toolkit(PROCEDURE)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, TITLE)
    for name in ("strength", "content-kept"):
        dialog.get_spin_scale(name, 1.0)  # a slider, like the Krita dialog's, not a bare number
    text, running = server_status()
    status = dialog.get_label("server-status", text, False, False)
    status.set_line_wrap(True)
    status.set_max_width_chars(48)
    status.set_xalign(0.0)
    status.set_selectable(True)  # a failed start's log lines and command can be copied
    dialog.fill(["server-status", *DIALOG_ARGUMENTS])
    start = Gtk.Button.new_with_mnemonic("Start ser_ver")  # no clash with the labels above
    start.connect("clicked", lambda button: _start_server(button, status))
    dialog.get_content_area().pack_start(start, False, False, 0)
    start.set_visible(not running)
    try:
        return dialog.run()
    finally:
        dialog.destroy()
