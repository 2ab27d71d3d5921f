"""``python -m nst_server``: the same as the ``nst-server`` command."""

import sys

from .cli import main

sys.exit(main())
