"""The OpenAPI 3.1 description served at ``/v1/openapi.json``, for scripts and API tools."""

from __future__ import annotations

from typing import Any

from nst_engine import PRESETS

from .config import Limits
from .imagecodec import CHANNELS, SAMPLES

STATES = ["queued", "running", "done", "failed", "cancelled"]


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_UNKNOWN = _error("No such job (never submitted, or expired)")


def document(version: str, limits: Limits) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Neural style transfer server",
            "version": version,
            "description": "Queue style transfer jobs (Gatys et al., VGG-19) on this machine. "
                           "Every endpoint except health and this document needs "
                           "`Authorization: Bearer <token>` (`nst-server token` prints it).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(limits),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/health": {"get": {
                "summary": "Version, device, weights, queue and limits", "security": [],
                "responses": {"200": _json("Server status", "Health")}}},
            "/v1/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI document"}}}},
            "/v1/jobs": {"post": {
                "summary": "Submit a job",
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"$ref": "#/components/schemas/JobRequest"}}}},
                "responses": {
                    "202": _json("Accepted and queued; Location is the job's status URL",
                                 "Accepted"),
                    "400": _error("A part is missing or invalid (the message says which)"),
                    "401": _error("Missing or wrong token"),
                    "413": _error("Upload or image larger than the limits"),
                    "429": _error("Queue full: retry after the Retry-After header's seconds"),
                    "507": _error("The server's disk is nearly full (health's disk)"),
                }}},
            "/v1/jobs/{job_id}": {
                "parameters": [_JOB_ID],
                "get": {"summary": "Job status and progress",
                        "responses": {"200": _json("Status", "Status"), "404": _UNKNOWN}},
                "delete": {"summary": "Cancel a queued or running job",
                           "responses": {"200": _json("Status after cancelling", "Status"),
                                         "404": _UNKNOWN}},
            },
            "/v1/jobs/{job_id}/events": {"parameters": [_JOB_ID], "get": {
                "summary": "Server-sent events: a `status` event (Status JSON) on each change, "
                           "until the job ends or the stream has lasted 10 minutes; a "
                           "keep-alive comment every 5 seconds without one",
                "responses": {"200": {"description": "Event stream",
                                      "content": {"text/event-stream": {}}},
                              "404": _UNKNOWN,
                              "429": _error("Too many open streams (limits.max_event_streams)"
                                            ": poll the job instead")}}},
            "/v1/jobs/{job_id}/preview": {"parameters": [_JOB_ID, {
                "name": "size", "in": "query", "schema": {
                    "type": "integer", "minimum": 16, "maximum": 4096, "default": 512},
                "description": "Longest side of the preview"}], "get": {
                "summary": "The latest intermediate image of a running job, as PNG",
                "description": "Asking is what makes previews: the next one is made after the "
                               "next iteration, at this size, then at most one a second while "
                               "a client asks. None once the job has ended.",
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}},
                              "404": _error("Unknown job, no preview yet, or the job has ended "
                                            "(code no_preview)")}}},
            "/v1/jobs/{job_id}/result": {"parameters": [_JOB_ID], "get": {
                "summary": "The result, in the form the content was sent: the same file type "
                           "and bit depth, or raw pixels in the same layout (headers "
                           "X-NST-Width, X-NST-Height, X-NST-Channels, X-NST-Sample); the "
                           "alpha channel is the content's, bit for bit",
                "responses": {"200": {"description": "The stylised image"},
                              "404": _UNKNOWN,
                              "409": _error("Not done (still queued or running, failed, or "
                                            "cancelled)")}}},
        },
    }


def _schemas(limits: Limits) -> dict[str, Any]:
    number = {"type": ["number", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "setting": {"type": "string"}}}}},
        "JobRequest": {"type": "object", "required": ["content", "style"], "properties": {
            "content": {"type": "string", "format": "binary", "description":
                        "An image file (PNG, JPEG, TIFF, WebP; 8 or 16 bit; float TIFF), or "
                        "raw interleaved pixels when `layout` is given"},
            "layout": {"type": "string", "contentMediaType": "application/json",
                       "description": "JSON: {width, height, channels, sample}; channels "
                                      f"{' or '.join(CHANNELS)}, sample {', '.join(SAMPLES)}, "
                                      "little-endian"},
            "style": {"type": "array", "maxItems": limits.max_styles,
                      "items": {"type": "string", "format": "binary"}},
            "style_weights": {"type": "string", "description":
                              "JSON list of blend weights, one per style image, each "
                              "from 0 to 1e6, not all zero"},
            "settings": {"type": "string", "description":
                         "JSON object of engine settings, e.g. {\"preset\": \"draft\", "
                         "\"style_weight\": 20}; presets: " + ", ".join(PRESETS)},
            "mask": {"type": "string", "format": "binary", "description":
                     "Selection: width*height bytes, 255 inside; the result is transparent "
                     "outside"},
        }},
        "Accepted": {"type": "object", "properties": {
            "id": {"type": "string"}, "state": {"enum": STATES},
            "urls": {"$ref": "#/components/schemas/Urls"}}},
        "Urls": {"type": "object", "properties": {
            name: {"type": "string"} for name in ("self", "events", "preview", "result")}},
        "Status": {"type": "object", "properties": {
            "id": {"type": "string"},
            "state": {"enum": STATES},
            "queue_position": {"type": ["integer", "null"], "description": "1 = next"},
            "iteration": {"type": "integer"}, "total": {"type": "integer"},
            "percent": {"type": "number"},
            "elapsed": number, "eta": number,
            "losses": {"type": "object", "additionalProperties": {"type": "number"}},
            "has_preview": {"type": "boolean"},
            "error": {"type": ["string", "null"]},
            "created": {"type": "number"}, "attempts": {"type": "integer"},
            "urls": {"$ref": "#/components/schemas/Urls"}}},
        "Health": {"type": "object", "properties": {
            "status": {"type": "string"}, "version": {"type": "string"},
            "device": {"type": "string"}, "devices": {"type": "array"},
            "weights": {"type": "string"}, "queue_length": {"type": "integer"},
            "running": {"type": "integer"},
            "limits": {"type": "object", "properties": {
                name: {"type": "integer"} for name in limits.to_dict()}},
            "disk": {"type": "object", "properties": {
                name: {"type": "integer"}
                for name in ("free_bytes", "jobs_bytes", "min_free_bytes")}}}},
    }
