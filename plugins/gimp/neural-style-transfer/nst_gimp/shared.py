"""The one place this plug-in imports the modules it shares with the Krita plugin.

Both plugins find the shared modules (``nst_client``: the server client and job flow;
``nst_options``: the dialogs' choices; ``nst_launcher``: starting the server; ``nst_previews``:
when to fetch a preview) by the same rule, each in its ``shared`` module: the copy the installer
put next to the plugin's code first, else the source tree's ``plugins/`` folder, appended to
``sys.path``. There is no other copy. Here the installer puts them beside the entry script,
whose folder GIMP's Python has on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import nst_client
    import nst_launcher
    import nst_options
    import nst_previews
except ImportError:  # the source tree: plugins/ is three folders up
    sys.path.append(str(Path(__file__).resolve().parents[3]))
    import nst_client
    import nst_launcher
    import nst_options
    import nst_previews

__all__ = ["nst_client", "nst_launcher", "nst_options", "nst_previews"]
