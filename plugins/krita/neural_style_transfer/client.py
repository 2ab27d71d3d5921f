"""Import the shared server client, wherever it lives.

Installed plugins carry a copy of ``nst_client.py`` inside this package (the installer puts it
there); in the source tree it is ``plugins/nst_client.py``, two folders up. There is no other copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from . import nst_client
except ImportError:
    _plugins = str(Path(__file__).resolve().parents[2])
    if _plugins not in sys.path:
        sys.path.insert(0, _plugins)
    import nst_client

__all__ = ["nst_client"]
