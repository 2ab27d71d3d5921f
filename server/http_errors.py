"""JSON errors: every failure, ours or Werkzeug's, answers ``{"error": {"code", "message"}}``
so clients can show the message to the artist and branch on the code.

This is the HTTP layer's own vocabulary (token, Host header, media type, Werkzeug's errors); the
domain's errors (:mod:`server.errors`) are mapped to statuses in :mod:`server.api`."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Codes for Werkzeug's own errors (routing, method, body size...).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An HTTP error answered to the client, raised by the web layer (app and api) only."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None, **extra: object) -> Response:
    response = jsonify({"error": {"code": code, "message": message, **extra}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.headers,
                              **error.extra)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the upload is larger than the server's limit of {limit} bytes"
        return error_response(status, _HTTP_CODES.get(status, "http_error"), message)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # An exception's text can hold paths and other details of this machine: the client
        # gets only an id, which finds the traceback in the log.
        incident = secrets.token_hex(6)
        log.exception("internal error %s while answering %s %s", incident, request.method,
                      request.path)
        return error_response(500, "internal_error",
                              f"internal error (id {incident}: the server's log has the details)",
                              incident=incident)
