"""The application factory: one :class:`Service` (store, queue, workers) behind a Flask app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from flask import Flask, request

from nst_engine import StyleTransfer

from . import __version__, api
from .config import ServerConfig
from .http_errors import ApiError, register_error_handlers
from .jobs import JobManager
from .security import WILDCARDS, allowed_hosts, host_allowed
from .store import JobStore
from .worker import Worker

log = logging.getLogger(__name__)


class Service:
    """Everything the API serves from: the job store and queue, and one worker per device."""

    def __init__(self, config: ServerConfig, engines: Sequence[StyleTransfer]) -> None:
        self.config = config
        self.store = JobStore(config.data_dir)
        self.manager = JobManager(config, self.store, workers=len(engines))
        self.workers = [Worker(self.manager, engine) for engine in engines]
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, daemon=True, name="nst-sweeper")

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        self._sweeper.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; a running job is interrupted and runs again at the next start."""
        self._stop.set()
        self.manager.stop()
        for worker in self.workers:
            worker.join(timeout)
        self.store.close()

    def health(self) -> dict:
        first = self.workers[0].description
        return {
            "status": "ok",
            "version": __version__,
            "device": first["device"],
            "devices": [worker.description["device"] for worker in self.workers],
            "weights": first["weights"],
            "precision": first["precision"],
            "queue_length": self.manager.queue_length(),
            "running": self.manager.running(),
            "limits": self.config.limits.to_dict(),
        }

    def _sweep(self) -> None:
        while not self._stop.wait(self.config.sweep_interval_s):
            try:
                removed = self.manager.sweep()
            except Exception:
                log.exception("could not remove expired jobs")
                continue
            if removed:
                log.info("removed %d expired jobs", removed)


def load_engines(config: ServerConfig) -> list[StyleTransfer]:
    """One loaded model per configured device (slow: seconds each)."""
    return [StyleTransfer(config.weights, device=device) for device in config.devices]


def create_app(config: ServerConfig, engines: Sequence[StyleTransfer] | None = None,
               *, start: bool = True) -> Flask:
    """The Flask app serving ``config``. Pass ``engines`` to share already loaded models
    (tests do); ``start=False`` leaves the workers idle, so jobs stay queued."""
    service = Service(config, engines if engines is not None else load_engines(config))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.limits.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024  # settings and layout JSON, not images
    app.json.sort_keys = False
    app.extensions["nst"] = service
    register_error_handlers(app)

    hosts = allowed_hosts(config.host, config.allow_hosts)
    any_ip = config.host in WILDCARDS

    @app.before_request
    def _check_host() -> None:
        # A web page that rebinds its own domain to 127.0.0.1 still sends its own name.
        if not host_allowed(request.host, hosts, any_ip):
            raise ApiError(403, "bad_host", f"requests must address this server by its own "
                           f"name or address, not {request.host!r} (see --allow-host)")

    app.register_blueprint(api.bp)
    if start:
        service.start()
    return app
