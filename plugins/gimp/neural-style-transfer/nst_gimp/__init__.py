"""The Neural Style Transfer GIMP 3 plug-in's modules, behind the thin entry script.

Installed, this package sits beside the entry and the shared ``nst_client.py`` and
``nst_options.py`` in GIMP's ``plug-ins/neural-style-transfer/`` folder. Every module imports
those two through ``shared``, which also finds them in the source tree.
"""
