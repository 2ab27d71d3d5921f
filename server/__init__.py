"""The local HTTP server: a Flask app (:func:`server.app.create_app`) that queues style transfer
jobs for the editor plugins and scripts, served by waitress through the ``nst-server`` command."""

__version__ = "0.1.0"
