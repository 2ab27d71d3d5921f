"""Neural Style Transfer for Krita: Filter > Neural Style Transfer..., and a scripting entry.

Scripting (Krita's Scripter, batch scripts)::

    from neural_style_transfer import stylize_node
    doc = Krita.instance().activeDocument()
    layer = stylize_node(doc, doc.activeNode(), "/path/to/style.jpg", {"preset": "draft"})

Layout (after Acly/krita-ai-diffusion): ``extension`` is the thin Krita-facing layer, ``job`` and
``pixels`` the model, ``shared`` imports the modules shared with the GIMP plug-in (the server
client ``nst_client`` and the dialog choices ``nst_options``), ``dialog``/``worker`` the UI.
"""

from __future__ import annotations

from .scripting import stylize_node

__all__ = ["stylize_node"]


def _register() -> None:
    """Add the extension when Krita loads the plugin (not when a script imports the package)."""
    try:
        from krita import Krita
    except ImportError:  # imported outside Krita, e.g. by unit tests
        return
    from .extension import NeuralStyleTransferExtension

    app = Krita.instance()
    app.addExtension(NeuralStyleTransferExtension(app))


_register()
