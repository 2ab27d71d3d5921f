"""Import the modules shared with the GIMP plug-in, wherever they live.

Installed plugins carry copies of ``nst_client.py`` (the server client) and ``nst_options.py``
(the dialog's choices turned into server settings) inside this package: the installer puts them
there. In the source tree they are in ``plugins/``, two folders up. There is no other copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from . import nst_client, nst_options
except ImportError:
    _plugins = str(Path(__file__).resolve().parents[2])
    if _plugins not in sys.path:
        sys.path.insert(0, _plugins)
    import nst_client
    import nst_options

__all__ = ["nst_client", "nst_options"]
