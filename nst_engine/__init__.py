"""Neural style transfer (Gatys et al.) on VGG-19: a library, and the ``nst`` command.

>>> from nst_engine import StyleTransfer, Settings
>>> engine = StyleTransfer()                       # loads VGG-19 once
>>> result = engine.stylize("photo.png", ["style.jpg"], Settings.from_preset("draft"))
>>> result.save("out.png")
"""

from .errors import Cancelled, ImageError, NSTError, SettingsError, WeightsError
from .settings import PRESETS, Settings
from .transfer import CancelToken, Progress, StyleTransfer, stylize

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "CancelToken",
    "Cancelled",
    "ImageError",
    "NSTError",
    "Progress",
    "Settings",
    "SettingsError",
    "StyleTransfer",
    "WeightsError",
    "__version__",
    "stylize",
]
