"""The server's configuration: one dataclass built by the CLI (or by tests) and read by the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; every limit is reported by ``GET /v1/health``.

    The defaults fit a 16-bit A3 scan at 300 dpi (about 35 megapixels) sent as raw floats."""

    max_upload_bytes: int = 768 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_styles: int = 8
    #: Total optimiser iterations of one job, over all scales.
    max_iterations: int = 5000
    #: Jobs waiting (not running); one more is answered 429.
    max_queue: int = 16
    #: Open ``/events`` streams; each holds an HTTP thread, so this leaves threads for
    #: everything else (health, polling) whatever the clients do. One more is answered 429.
    max_event_streams: int = 8

    def to_dict(self) -> dict[str, int]:
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_pixels": self.max_pixels,
            "max_styles": self.max_styles,
            "max_iterations": self.max_iterations,
            "max_queue": self.max_queue,
            "max_event_streams": self.max_event_streams,
        }


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    token: str
    host: str = DEFAULT_HOST
    #: One worker (and one loaded model) per device.
    devices: tuple[str, ...] = ("auto",)
    weights: str = "default"
    #: Bytes one job may use at most (None: a share of the memory free when it starts); a
    #: larger scale runs in tiles, and a job that cannot fit even so is refused with 413.
    memory_budget: int | None = None
    limits: Limits = field(default_factory=Limits)
    #: Extra names the Host header may carry (a reverse proxy, this machine's LAN name).
    allow_hosts: tuple[str, ...] = ()
    #: A result is kept this long after it was first fetched (so a retried download works) ...
    result_ttl_s: float = 3600.0
    #: ... and this long if it is never fetched; job records go with it.
    unfetched_ttl_s: float = 7 * 24 * 3600.0
    #: How often expired results are removed.
    sweep_interval_s: float = 60.0
    #: New jobs are refused (507) while the data folder's disk has less than this free: a
    #: full disk would fail the jobs already accepted, and much else on the machine.
    min_free_disk: int = 2 * 2**30
    #: A job that was running when the server died this many times is failed, not rerun.
    max_attempts: int = 3
    #: An event stream with nothing to say sends a comment this often: writing is how a
    #: client that went away is noticed, and its thread freed.
    event_keepalive_s: float = 5.0
    #: An event stream ends after this long (clients reconnect), so none holds a thread for
    #: the whole of a job that may wait for hours.
    event_max_s: float = 600.0
