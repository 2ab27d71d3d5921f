"""The ``/v1`` HTTP API: thin handlers over :class:`~server.jobs.JobManager`.

Handlers only translate HTTP to calls and back; every decision (limits, states, what a result
looks like) lives in the modules below them, where it is tested without a server
(tests/unit/test_server_core.py). This is the one module that knows how those decisions look
over HTTP: the status of each domain error (:data:`STATUS`), ``Retry-After``, and the
``X-NST-*`` headers of a raw result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context, url_for

from . import __version__, openapi
from .errors import (
    BadInput,
    NoPreview,
    NoSpace,
    NotReady,
    QueueFull,
    ServerError,
    TooLarge,
    UnknownJob,
)
from .http_errors import ApiError, error_response
from .imagecodec import EncodedResult
from .jobs import JobManager
from .security import token_matches
from .service import Service
from .store import TERMINAL
from .submission import parse_submission

bp = Blueprint("v1", __name__, url_prefix="/v1")

#: The HTTP status of each domain error.
STATUS: dict[type[ServerError], int] = {
    BadInput: 400,
    UnknownJob: 404,
    NoPreview: 404,
    NotReady: 409,
    TooLarge: 413,
    QueueFull: 429,
    NoSpace: 507,
}

#: Endpoints a client may call without the token: discovery needs nothing secret.
PUBLIC = frozenset({"v1.health", "v1.openapi_document"})
#: How often the event stream looks for changes.
EVENT_INTERVAL_S = 0.5


def _service() -> Service:
    return current_app.extensions["nst"]


def _jobs() -> JobManager:
    return _service().manager


@bp.app_errorhandler(ServerError)
def _domain_error(error: ServerError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, QueueFull) else {}
    return error_response(STATUS[type(error)], error.code, error.message, headers, **error.extra)


def _result_response(result: EncodedResult) -> Response:
    """A raw result says its layout in headers, so a client can check what it got back."""
    response = Response(result.body, content_type=result.media_type)
    form = result.form
    if form.kind == "raw":
        response.headers.update({"X-NST-Width": str(form.width), "X-NST-Height": str(form.height),
                                 "X-NST-Channels": form.channels, "X-NST-Sample": form.sample})
    return response


@bp.before_request
def _require_token() -> None:
    if request.endpoint in PUBLIC:
        return
    if not token_matches(request.headers.get("Authorization"), _service().config.token):
        raise ApiError(401, "unauthorized",
                       "missing or wrong access token: send 'Authorization: Bearer <token>' "
                       "with the token from `nst-server token`",
                       headers={"WWW-Authenticate": 'Bearer realm="nst-server"'})


def _urls(job_id: str) -> dict[str, str]:
    return {
        "self": url_for("v1.job_status", job_id=job_id),
        "events": url_for("v1.job_events", job_id=job_id),
        "preview": url_for("v1.job_preview", job_id=job_id),
        "result": url_for("v1.job_result", job_id=job_id),
    }


def _status(job_id: str) -> dict:
    return {**_jobs().status(job_id), "urls": _urls(job_id)}


@bp.get("/health")
def health() -> Response:
    return jsonify(_service().health())


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document(__version__, _service().config.limits))


@bp.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    if not request.mimetype.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type",
                       "send the job as multipart/form-data (see /v1/openapi.json)")
    submission = parse_submission(request.form, request.files, _service().config.limits)
    _service().check_fits(submission)
    record = _jobs().submit(submission)
    body = {"id": record.id, "state": record.state, "urls": _urls(record.id)}
    return jsonify(body), 202, {"Location": _urls(record.id)["self"]}


@bp.get("/jobs/<job_id>")
def job_status(job_id: str) -> Response:
    return jsonify(_status(job_id))


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> Response:
    _jobs().cancel(job_id)
    return jsonify(_status(job_id))


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    """Server-sent events: one ``status`` event per change, until the job ends or the stream
    has lasted ``event_max_s``; a comment every ``event_keepalive_s`` without one.

    Each stream holds an HTTP thread, so their number is capped (429 past it) and none
    outlives a client that went away for more than a keep-alive."""
    first = _status(job_id)  # a 404 for an unknown job, before the stream starts
    service = _service()
    config = service.config
    if not service.event_streams.acquire(blocking=False):
        raise ApiError(429, "too_many_streams",
                       f"{config.limits.max_event_streams} event streams are open already; "
                       f"poll {_urls(job_id)['self']} instead, or try again later",
                       headers={"Retry-After": str(round(config.event_keepalive_s))})

    def stream() -> Iterator[str]:
        last, status = None, first
        started = sent = time.monotonic()
        while True:
            if status != last:
                yield f"event: status\ndata: {json.dumps(status)}\n\n"
                last, sent = status, time.monotonic()
            if status["state"] in TERMINAL:
                return
            time.sleep(EVENT_INTERVAL_S)
            now = time.monotonic()
            if now - started >= config.event_max_s:
                return
            if now - sent >= config.event_keepalive_s:
                yield ": keep-alive\n\n"
                sent = now
            try:
                status = _status(job_id)
            except UnknownJob:  # expired while we watched
                return

    response = Response(stream_with_context(stream()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    # On close, not in the generator: one that never started would never release it.
    response.call_on_close(service.event_streams.release)
    return response


@bp.get("/jobs/<job_id>/preview")
def job_preview(job_id: str) -> Response:
    size = request.args.get("size", "512")
    # isdigit() alone lets through digits such as "²" that int() cannot read.
    if not (size.isascii() and size.isdigit()) or not 16 <= int(size) <= 4096:
        raise ApiError(400, "bad_size", "size must be a whole number of pixels from 16 to 4096")
    return Response(_jobs().preview(job_id, int(size)), mimetype="image/png",
                    headers={"Cache-Control": "no-store"})


@bp.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> Response:
    return _result_response(_jobs().result(job_id))
