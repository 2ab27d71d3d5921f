"""The Neural Style Transfer GIMP 3 plug-in's modules, behind the thin entry script.

Installed, this package sits beside the entry and the shared ``nst_client.py`` and
``nst_options.py`` in GIMP's ``plug-ins/neural-style-transfer/`` folder (the entry's folder is on
``sys.path``). Run from the source tree (a developer pointing GIMP's plug-in folders at
``plugins/gimp``), the shared modules are two folders further up: the one place they live.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("nst_client") is None:
    sys.path.append(str(Path(__file__).resolve().parents[3]))
