"""The application factory: one :class:`~server.service.Service` behind a Flask app.

Only the web wiring is here (limits, error handlers, the Host check, the ``/v1`` blueprint);
the service itself knows nothing of Flask, so the API can name it without an import cycle."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, request

from nst_engine import StyleTransfer

from . import api
from .config import ServerConfig
from .http_errors import ApiError, register_error_handlers
from .security import WILDCARDS, allowed_hosts, host_allowed, origin_allowed
from .service import Service


def create_app(config: ServerConfig, engines: Sequence[StyleTransfer] | None = None,
               *, start: bool = True) -> Flask:
    """The Flask app serving ``config``. Pass ``engines`` to share already loaded models
    (tests do); ``start=False`` leaves the workers idle, so jobs stay queued."""
    service = Service(config, engines)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.limits.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024  # settings and layout JSON, not images
    app.json.sort_keys = False
    app.extensions["nst"] = service
    register_error_handlers(app)

    hosts = allowed_hosts(config.host, config.allow_hosts)
    any_ip = config.host in WILDCARDS

    @app.before_request
    def _check_host_and_origin() -> None:
        # A web page that rebinds its own domain to 127.0.0.1 still sends its own name.
        if not host_allowed(request.host, hosts, any_ip):
            raise ApiError(403, "bad_host", f"requests must address this server by its own "
                           f"name or address, not {request.host!r} (see --allow-host)")
        # Host is ours by now, so the page's origin must be exactly the one it addressed.
        if not origin_allowed(request.headers.get("Origin"), request.host_url.rstrip("/")):
            raise ApiError(403, "bad_origin", "requests from web pages are refused: this "
                           "server is for the editors' plugins and scripts on this machine")

    @app.before_request
    def _note_activity() -> None:
        # After the Host and Origin checks: a web page knocking does not keep the server up.
        service.activity.touch()

    app.register_blueprint(api.bp)
    if start:
        service.start()
    return app
