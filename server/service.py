"""The composition root: the job store, the queue and one worker per device, wired together.

Kept apart from the Flask factory (:mod:`server.app`) so that the API (:mod:`server.api`) can
name the service it serves without importing the module that imports it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from nst_engine import SettingsError, StyleTransfer

from . import __version__
from .config import ServerConfig
from .datalock import DataLock
from .errors import TooLarge
from .idle import Activity
from .jobs import JobManager
from .store import JobStore
from .submission import Submission
from .worker import Worker

log = logging.getLogger(__name__)


class Service:
    """Everything the API serves from: the job store and queue, and one worker per device."""

    def __init__(self, config: ServerConfig,
                 engines: Sequence[StyleTransfer] | None = None) -> None:
        """``engines``: already loaded models (tests share them); by default one is loaded
        per configured device, once the data folder is ours."""
        self.config = config
        # Before the store is opened: recovering jobs re-queues them, which only the one
        # server that owns the folder may do (DataFolderBusy otherwise). And before the
        # models are loaded: a second server, such as two editors starting one at the same
        # time, must give way at once, not after loading VGG-19 for nothing.
        self.data_lock = DataLock.acquire(config.data_dir)
        if engines is None:
            engines = load_engines(config)
        self.store = JobStore(config.data_dir)
        self.manager = JobManager(config, self.store, workers=len(engines))
        self.workers = [Worker(self.manager, engine) for engine in engines]
        #: One per open ``/events`` stream (see ``Limits.max_event_streams``).
        self.event_streams = threading.BoundedSemaphore(config.limits.max_event_streams)
        #: When the server was last used, for ``--idle-timeout`` (see :mod:`.idle`).
        self.activity = Activity(self.busy)
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
        self.data_lock.release()

    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return self.manager.queue_length() > 0 or self.manager.running() > 0

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
            "memory_budget": min(worker.engine.budget() for worker in self.workers),
            "memory_budget_source": "option" if self.config.memory_budget else "auto",
            "disk": {**self.store.disk_usage(), "min_free_bytes": self.config.min_free_disk},
        }

    def check_fits(self, submission: Submission) -> None:
        """Refuse, before it is stored, a job that no worker could hold in memory."""
        form = submission.form
        errors = []
        for worker in self.workers:
            try:
                worker.engine.plan(form.height, form.width, submission.settings,
                                   submission.style_sizes)
                return
            except SettingsError as error:
                errors.append(str(error))
        why = errors[0].removeprefix("setting 'memory_budget': ")
        raise TooLarge("over_memory_budget", f"This job does not fit in memory: {why}",
                       setting="memory_budget")

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
    return [StyleTransfer(config.weights, device=device, memory_budget=config.memory_budget)
            for device in config.devices]
