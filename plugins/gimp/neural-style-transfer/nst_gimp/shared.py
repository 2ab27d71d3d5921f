"""The one place this plug-in imports the modules it shares with the Krita plugin.

Both plugins find ``nst_client`` (the server client and job flow) and ``nst_options`` (the
dialogs' choices) by the same rule, each in its ``shared`` module: the copy the installer put
next to the plugin's code first, else the source tree's ``plugins/`` folder, appended to
``sys.path``. There is no other copy. Here the installer puts them beside the entry script,
whose folder GIMP's Python has on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import nst_client
    import nst_options
except ImportError:  # the source tree: plugins/ is three folders up
    sys.path.append(str(Path(__file__).resolve().parents[3]))
    import nst_client
    import nst_options

__all__ = ["nst_client", "nst_options"]
