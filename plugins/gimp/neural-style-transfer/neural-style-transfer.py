#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Artistic > Neural Style Transfer.

The thin part GIMP talks to: registers the procedure and turns the run's outcome into GIMP's
return values. The work is in the ``nst_gimp`` package beside this file; the server is reached
through the shared ``nst_client`` (copied here by `nst-server install-plugin gimp`).
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402
from nst_gimp import arguments  # noqa: E402
from nst_gimp.stylize import ARTIST_ERRORS, Cancelled, stylize  # noqa: E402


class NeuralStyleTransfer(Gimp.PlugIn):
    def do_query_procedures(self) -> list[str]:
        return [arguments.PROCEDURE]

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        arguments.define(procedure)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, _data) -> Gimp.ValueArray:
        if run_mode == Gimp.RunMode.INTERACTIVE and not arguments.show_dialog(procedure, config):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        # The artist's runs (the dialog, or Filters > Repeat) get the progress window, whose
        # Cancel ends the run cleanly; scripts keep GIMP's progress, and so does a GIMP
        # without a GUI (gimp-console has no display for a window).
        interactive = run_mode != Gimp.RunMode.NONINTERACTIVE and bool(Gimp.Display.name())
        try:
            layer = stylize(image, drawables, arguments.read_choices(config), interactive)
        except Cancelled:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        except ARTIST_ERRORS as exc:
            return procedure.new_return_values(
                Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc))
            )
        values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
        values.remove(1)
        values.insert(1, GObject.Value(Gimp.Layer, layer))
        return values


Gimp.main(NeuralStyleTransfer.__gtype__, sys.argv)
