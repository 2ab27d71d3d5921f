"""The job queue: accepting, ordering, cancelling, reporting and expiring jobs.

The durable truth is the :class:`~server.store.JobStore`; this module adds what only matters
while the process lives: the order of waiting jobs, each running job's progress and preview,
and the cancel tokens. Workers (:mod:`server.worker`) take jobs from here. It speaks in domain
errors (:mod:`server.errors`); :mod:`server.api` turns them into HTTP answers.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from nst_engine import CancelToken, Progress
from nst_engine.memory import format_bytes

from . import imagecodec
from .config import ServerConfig
from .errors import NoPreview, NoSpace, NotReady, QueueFull, UnknownJob
from .imagecodec import EncodedResult, Form
from .store import CANCELLED, DONE, FAILED, QUEUED, RESULT, RUNNING, JobRecord, JobStore
from .submission import Submission

log = logging.getLogger(__name__)

#: Assumed length of a job until the first one has finished, for Retry-After.
_FIRST_GUESS_S = 30.0
#: A running job makes a preview at most this often, and only while a client asks for them:
#: a preview costs the job a resize and a PNG, and made after every iteration they cost about
#: as much as the job itself (issue 17).
PREVIEW_INTERVAL_S = 1.0


@dataclass
class LiveProgress:
    """What a running (or recently finished) job reports beyond its stored record."""

    iteration: int = 0
    #: Passes over tiles done within the current iteration, of ``tiles`` (0: untiled).
    tile: int = 0
    tiles: int = 0
    #: How the current scale runs (size, tiles, optimiser, memory), from the engine.
    plan: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    eta: float | None = None
    started: float = field(default_factory=time.monotonic)
    #: The latest preview, as PNG; dropped when the job ends.
    preview: bytes | None = None
    #: The longest side the last client asked for (0: no client asks), and when the last
    #: preview was made (the manager's clock).
    preview_side: int = 0
    preview_made: float = -math.inf
    cancel: CancelToken = field(default_factory=CancelToken)


class JobManager:
    """The queue and the live state of jobs; safe to call from request, worker and sweeper
    threads.

    ``clock`` gives the wall-clock times stored in records (submitted, finished, fetched) and
    the "now" that expiry is measured against; tests pass a fake one instead of sleeping."""

    def __init__(self, config: ServerConfig, store: JobStore, workers: int = 1,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.workers = workers
        self._clock = clock
        self._queue: deque[str] = deque()
        self._ready = threading.Condition()
        # Written by workers and the sweeper while request threads read it: every access
        # holds this lock, so no thread iterates it while another one changes its size.
        self._live_lock = threading.Lock()
        self._live: dict[str, LiveProgress] = {}
        self._average_s = _FIRST_GUESS_S
        self._stopping = False
        self._recover()

    # --- accepting ------------------------------------------------------------------------

    def submit(self, submission: Submission) -> JobRecord:
        """Store the job's inputs and record, then queue it; QueueFull when there is no room."""
        with self._ready:
            if len(self._queue) >= self.config.limits.max_queue:
                raise QueueFull("queue_full",
                                f"the server's queue is full ({len(self._queue)} jobs waiting); "
                                f"try again in a little while", retry_after=self.retry_after())
            self._check_space(submission)
            job_id = uuid.uuid4().hex
            self.store.write_file(job_id, "content", submission.content)
            for index, style in enumerate(submission.styles):
                self.store.write_file(job_id, f"style-{index}", style)
            if submission.mask is not None:
                self.store.write_file(job_id, "mask", submission.mask)
            record = JobRecord(
                id=job_id, seq=self.store.next_seq(), state=QUEUED, created=self._clock(),
                settings=json.dumps(submission.settings.to_dict()), styles=len(submission.styles),
                form=submission.form.to_json(), has_mask=submission.mask is not None,
                total=submission.settings.total_iterations(submission.form.height,
                                                           submission.form.width),
                style_weights=json.dumps(submission.style_weights)
                if submission.style_weights is not None else None,
            )
            self.store.add(record)
            self._queue.append(job_id)
            self._ready.notify()
        log.info("job %s queued (%d waiting)", job_id, len(self._queue))
        return record

    def _check_space(self, submission: Submission) -> None:
        """NoSpace unless the inputs fit and leave ``min_free_disk`` free."""
        size = len(submission.content) + sum(map(len, submission.styles)) + len(
            submission.mask or b"")
        free = self.store.free_bytes()
        if free - size < self.config.min_free_disk:
            raise NoSpace("disk_full", f"the server's disk has {format_bytes(free)} free, "
                          f"less than the {format_bytes(self.config.min_free_disk)} it keeps "
                          f"free; delete some files on it, then try again")

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely to be free."""
        return max(1, math.ceil(self._average_s * max(1, len(self._queue)) / self.workers))

    # --- for workers ------------------------------------------------------------------------

    def take(self) -> JobRecord | None:
        """Block until a job is waiting, mark it running and return it (None on shutdown)."""
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if self._stopping:
                    return None
                job_id = self._queue.popleft()
            record = self.store.get(job_id)
            if record is None or record.state != QUEUED:
                continue  # cancelled or expired while it waited
            if self.store.transition(job_id, (QUEUED,), state=RUNNING, started=self._clock(),
                                     attempts=record.attempts + 1):
                with self._live_lock:
                    self._live[job_id] = LiveProgress()
                return self.store.get(job_id)

    def live(self, job_id: str) -> LiveProgress:
        with self._live_lock:
            return self._live.setdefault(job_id, LiveProgress())

    def _live_of(self, job_id: str) -> LiveProgress | None:
        with self._live_lock:
            return self._live.get(job_id)

    def report(self, job_id: str, progress: Progress) -> None:
        """Take the engine's progress; make a preview if a client asked and it is time."""
        live = self.live(job_id)
        live.iteration, live.losses, live.eta = progress.iteration, progress.losses, progress.eta
        live.tile, live.tiles, live.plan = progress.tile, progress.tiles, progress.plan
        now = self._clock()
        if (progress.render is not None and live.preview_side
                and now - live.preview_made >= PREVIEW_INTERVAL_S):
            live.preview = imagecodec.preview_png(progress.render(live.preview_side))
            live.preview_made = now

    def _end(self, job_id: str) -> None:
        """A job ended: its preview is of no more use, and may be large."""
        live = self._live_of(job_id)
        if live is not None:
            live.preview, live.preview_side = None, 0

    def finish(self, job_id: str, result: EncodedResult) -> None:
        """Store the result, then mark the job done, unless it was cancelled meanwhile.

        Only the bytes are stored: a result is always in the content's form, which the record
        already holds (see :meth:`result`)."""
        self.store.write_file(job_id, RESULT, result.body)
        self._end(job_id)
        # The inputs go before the job is marked done, so that a client who sees "done" finds
        # only the result. Either way the job has ended: a cancelled one has lost them already.
        self.store.delete_inputs(job_id)
        if self.store.transition(job_id, (RUNNING,), state=DONE, finished=self._clock()):
            self._learn_duration(job_id)
            log.info("job %s done", job_id)

    def fail(self, job_id: str, message: str) -> None:
        self._end(job_id)
        if self.store.transition(job_id, (RUNNING,), state=FAILED, finished=self._clock(),
                                 error=message):
            self.store.delete_inputs(job_id)
            log.warning("job %s failed: %s", job_id, message)

    def _learn_duration(self, job_id: str) -> None:
        live = self._live_of(job_id)
        if live is not None:
            self._average_s = 0.7 * self._average_s + 0.3 * (time.monotonic() - live.started)

    # --- for clients ----------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id) if _is_job_id(job_id) else None
        if record is None:
            raise UnknownJob("unknown_job", f"no job {job_id!r} on this server (it may have "
                             f"expired: results are kept for a while after they are fetched)")
        return record

    def status(self, job_id: str) -> dict:
        record = self.get(job_id)
        live = self._live_of(job_id)
        iteration = record.total if record.state == DONE else (live.iteration if live else 0)
        elapsed = None
        if record.started is not None:
            elapsed = round((record.finished or self._clock()) - record.started, 3)
        return {
            "id": record.id,
            "state": record.state,
            "queue_position": self._position(job_id) if record.state == QUEUED else None,
            "iteration": iteration,
            "total": record.total,
            "tile": live.tile if live and record.state == RUNNING else 0,
            "tiles": live.tiles if live and record.state == RUNNING else 0,
            "plan": live.plan if live else "",
            "percent": round(100.0 * (iteration + (live.tile / live.tiles if live and live.tiles
                                                   and record.state == RUNNING else 0))
                             / record.total, 1) if record.total else 0.0,
            "elapsed": elapsed,
            "eta": (round(live.eta, 1) if live and live.eta is not None else None)
            if record.state == RUNNING else (0.0 if record.state == DONE else None),
            "losses": dict(live.losses) if live else {},
            "has_preview": bool(live and live.preview is not None and record.state == RUNNING),
            "error": record.error,
            "created": record.created,
            "attempts": record.attempts,
        }

    def _position(self, job_id: str) -> int | None:
        with self._ready:
            try:
                return self._queue.index(job_id) + 1
            except ValueError:
                return None

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued or running job; a finished job is left as it is."""
        record = self.get(job_id)
        if record.state in (QUEUED, RUNNING) and self.store.transition(
                job_id, (QUEUED, RUNNING), state=CANCELLED, finished=self._clock(),
                error="cancelled by a client"):
            with self._ready:
                if job_id in self._queue:
                    self._queue.remove(job_id)
            live = self._live_of(job_id)
            if live is not None:
                live.cancel.cancel()  # the worker stops within one iteration
            self._end(job_id)
            # A running job read them before its first step; one still reading them fails to,
            # and stays cancelled (fail() only changes a running job).
            self.store.delete_inputs(job_id)
            log.info("job %s cancelled", job_id)
        return self.status(job_id)

    def preview(self, job_id: str, size: int) -> bytes:
        """The latest preview of a running job (PNG). Asking is what makes previews: the
        next one is made after the next iteration, at ``size``, and then at most once per
        ``PREVIEW_INTERVAL_S``."""
        record = self.get(job_id)
        live = self._live_of(job_id)
        if record.state != RUNNING or live is None:
            raise NoPreview("no_preview", f"job {job_id} is {record.state}: previews are made "
                            f"only while it runs")
        live.preview_side = size
        if live.preview is None:
            raise NoPreview("no_preview", "no preview yet: one is made after the next "
                            "iteration; ask again in a second")
        return live.preview

    def result(self, job_id: str) -> EncodedResult:
        """The finished result; NotReady until the job is done."""
        record = self.get(job_id)
        if record.state != DONE:
            reason = {QUEUED: "it is still waiting in the queue",
                      RUNNING: "it is still running",
                      FAILED: f"it failed: {record.error}",
                      CANCELLED: "it was cancelled"}[record.state]
            raise NotReady("not_ready", f"job {job_id} has no result: {reason}",
                           state=record.state)
        if record.fetched is None:
            self.store.update(job_id, fetched=self._clock())
        return EncodedResult(self.store.read_file(job_id, RESULT), Form.from_json(record.form))

    def queue_length(self) -> int:
        with self._ready:
            return len(self._queue)

    def running(self) -> int:
        return len(self.store.in_states(RUNNING))

    # --- housekeeping ------------------------------------------------------------------------

    def _recover(self) -> None:
        """Requeue what a previous process accepted but did not finish, in the original order.

        A job that was running when the process died is run again, unless it has already been
        running during ``max_attempts`` deaths: then it is probably what kills the server."""
        self._remove_orphans()
        for record in self.store.in_states(QUEUED, RUNNING):
            if record.state == RUNNING:
                if record.attempts >= self.config.max_attempts:
                    self.store.update(record.id, state=FAILED, finished=self._clock(), error=(
                        f"the server stopped {record.attempts} times while running this job; "
                        f"try a smaller size or the draft preset"))
                    self.store.delete_inputs(record.id)
                    continue
                self.store.update(record.id, state=QUEUED)
                log.info("job %s was running when the server stopped: queued again", record.id)
            self._queue.append(record.id)

    def sweep(self) -> int:
        """Delete expired jobs, and folders that no job owns; returns how many jobs."""
        expired = self.store.expired(self._clock(), self.config.result_ttl_s,
                                     self.config.unfetched_ttl_s)
        for job_id in expired:
            self.store.delete(job_id)
            with self._live_lock:
                self._live.pop(job_id, None)
        self._remove_orphans()
        return len(expired)

    def _remove_orphans(self) -> None:
        # Under the queue's lock: a job being submitted has its files before its row.
        with self._ready:
            orphans = self.store.orphans()
            for job_id in orphans:
                self.store.delete(job_id)
        if orphans:
            log.info("removed %d job folders that no job owned (left by a crash)",
                     len(orphans))

    @property
    def stopping(self) -> bool:
        return self._stopping

    def requeue(self, record: JobRecord) -> None:
        """Put a job interrupted by a clean shutdown back in the queue for the next start,
        without counting the interruption as one of its attempts."""
        self.store.transition(record.id, (RUNNING,), state=QUEUED,
                              attempts=max(0, record.attempts - 1))

    def stop(self) -> None:
        """Stop the workers: a running job is interrupted and runs again at the next start."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        with self._live_lock:  # a snapshot: workers and the sweeper go on changing the dict
            running = list(self._live.values())
        for live in running:
            live.cancel.cancel()


def _is_job_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)
