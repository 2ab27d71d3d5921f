"""What can go wrong with a request or a job, in the server's own terms, without HTTP.

Raised by :mod:`server.submission`, :mod:`server.imagecodec` and :mod:`server.jobs`, which know
nothing of the web; :mod:`server.api` alone decides which HTTP answer each kind is. Every error
carries a stable ``code`` that clients branch on and a message meant for the artist.
"""

from __future__ import annotations


class ServerError(Exception):
    """Base of the server's domain errors; ``extra`` is added to the error body as it is."""

    def __init__(self, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class BadInput(ServerError):
    """A part of the request cannot be used as sent: the client must change it."""


class TooLarge(ServerError):
    """An image is over the server's limits (which ``/v1/health`` lists)."""


class UnknownJob(ServerError):
    """No such job: never submitted, or expired."""


class NoPreview(ServerError):
    """The job has no preview image yet."""


class NotReady(ServerError):
    """The job has no result (yet, or ever); ``extra["state"]`` says which state it is in."""


class NoSpace(ServerError):
    """The server's disk is too full to store another job."""


class QueueFull(ServerError):
    """No room in the queue; ``retry_after`` is the server's guess in whole seconds."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after
