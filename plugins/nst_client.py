"""Client for the local neural style transfer server, shared by the Krita and GIMP plugins.

Why standard library only: Krita's and GIMP's embedded Pythons ship without ``requests``, and
artists should not have to install packages into their editor. Why one file: the installers copy
this module beside each plugin, so both editors speak to the server through exactly the same code:
the HTTP calls (:class:`Client`), the raw pixel layout both editors send (:class:`PixelLayout`),
and the whole job as a plugin runs it, submit, wait, fetch and check (:func:`run_job`). Each
plugin keeps only its editor's glue: reading and writing layers, and its UI.

Kept to Python 3.8 syntax (annotations are strings via ``from __future__``) so it runs in any
editor Python from 3.8 up to 3.13.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import mimetypes
import os
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AuthError",
    "BadResponse",
    "Client",
    "JobCancelled",
    "JobFailed",
    "NSTClientError",
    "PixelLayout",
    "QueueFull",
    "ServerGone",
    "ServerUnavailable",
    "StyleRequest",
    "config_dir",
    "connection_file",
    "run_job",
]

DEFAULT_URL = "http://127.0.0.1:8765"
START_HINT = "Start it with `nst-server` in a terminal, then try again."
#: Bytes per sample of each raw sample type the server takes.
SAMPLE_BYTES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
#: The most bytes read from a JSON answer or error (a status is well under a kilobyte): a
#: broken or hostile server must not make the editor hold an answer of any size in memory.
MAX_JSON_BYTES = 1 << 20
#: The most bytes read from a result whose size is not known in advance (a file's); a raw
#: result is read up to exactly the size its layout needs.
MAX_RESULT_BYTES = 1 << 30
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------- errors
class NSTClientError(Exception):
    """Base of every error this client raises; ``str(error)`` is meant for the artist."""


class ServerUnavailable(NSTClientError):
    """The server cannot be reached (not started, wrong address, or no connection file)."""


class ServerGone(ServerUnavailable):
    """The server stopped answering while a job was running; ``job_id`` lets it be resumed."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class BadResponse(NSTClientError):
    """The server's answer cannot be used: not JSON, too large, a preview larger than asked
    for, or a redirect. Something other than ``nst-server`` may be listening at the address."""


class AuthError(NSTClientError):
    """The server refused our token (it was restarted with a new one, or NST_TOKEN is stale)."""


class ApiError(NSTClientError):
    """The server answered with a JSON error (bad image, bad settings, unknown job...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class QueueFull(ApiError):
    """The server's queue is full; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


class JobFailed(NSTClientError):
    """The job ran and failed on the server; the message is the server's own explanation."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobCancelled(NSTClientError):
    """The job was cancelled (by us or by someone else) before it finished."""

    def __init__(self, job_id: str) -> None:
        super().__init__("The style transfer was cancelled.")
        self.job_id = job_id


# ---------------------------------------------------------------------------------- raw pixels
@dataclass(frozen=True)
class PixelLayout:
    """Raw pixels as an editor hands them over: interleaved, four channels, little-endian.

    ``channels`` ("RGBA" or "BGRA") and ``sample`` ("u8", "u16", "f16" or "f32") are named as the
    server's ``layout`` field names them; each plugin only says which layout its editor uses.
    The server answers in the same layout, so the result goes back into the editor unconverted.
    """

    channels: str
    sample: str

    @property
    def bytes_per_sample(self) -> int:
        return SAMPLE_BYTES[self.sample]

    def byte_count(self, width: int, height: int) -> int:
        return width * height * 4 * self.bytes_per_sample

    def as_dict(self, width: int, height: int) -> dict:
        """The server's ``layout`` field for an image of this size."""
        return {"width": width, "height": height, "channels": self.channels, "sample": self.sample}


@dataclass
class StyleRequest:
    """Everything a plugin sends, read from the editor up front so no editor object is needed
    while the job runs (on a worker thread, or while the editor waits)."""

    pixels: bytes
    width: int
    height: int
    layout: PixelLayout
    styles: list[str]
    settings: dict = field(default_factory=dict)
    mask: bytes | None = None


# ------------------------------------------------------------------------------------ discovery
def config_dir(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The folder where `nst-server` writes ``connection.json`` on this operating system."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "nst-server"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "nst-server"
    # An editor run as a Flatpak gets its own XDG_CONFIG_HOME under ~/.var/app; the server runs
    # outside and writes to the host's config folder, which Flatpak names HOST_XDG_CONFIG_HOME.
    in_flatpak = bool(env.get("FLATPAK_ID"))
    xdg = env.get("HOST_XDG_CONFIG_HOME" if in_flatpak else "XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else home / ".config") / "nst-server"


def connection_file(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Path of the connection file (``{"url": ..., "token": ...}``) written by `nst-server`."""
    return config_dir(platform, env) / "connection.json"


def _read_connection(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ServerUnavailable(
            f"The server's connection file {path} cannot be read ({exc}). "
            f"Delete it and restart the server with `nst-server`."
        ) from exc
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------------- multipart
def _encode_multipart(
    fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, str, bytes]]
) -> tuple[bytes, str]:
    """Encode form fields and (name, filename, content_type, data) files as multipart/form-data."""
    boundary = "nst-" + uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in fields:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode()
        )
        chunks.append(value.encode("utf-8") + b"\r\n")
    for name, filename, content_type, data in files:
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{safe_name}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        )
        chunks.append(data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _image_part(name: str, path: str | os.PathLike) -> tuple[str, str, str, bytes]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NSTClientError(
            f"Cannot read the image {path}: {exc.strerror or exc}. Choose another file."
        ) from exc
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return name, path.name, content_type, data


# ---------------------------------------------------------------------------------- transport
class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect and send the Authorization header along to wherever it
    points; the server never redirects, so a redirect ends the request as an HTTP error."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


#: No proxy either: urllib would send loopback requests, token included, to any proxy that
#: the editor's environment names (``http_proxy``) unless ``no_proxy`` lists the address.
_OPENER = urllib.request.build_opener(_RefuseRedirects, urllib.request.ProxyHandler({}))


def _read_bounded(response: Any, limit: int, what: str, url: str) -> bytes:
    """At most ``limit`` bytes of ``response``'s body; BadResponse past that, before reading
    any of it when the server announces the length."""
    announced = response.headers.get("Content-Length", "")
    too_long = announced.isdigit() and int(announced) > limit
    data = b"" if too_long else response.read(limit + 1)
    if announced.isdigit() and not too_long and len(data) < int(announced):
        # read(n) returns what came before the connection closed, without complaint.
        raise http.client.IncompleteRead(data, int(announced) - len(data))
    if not too_long and len(data) <= limit:
        return data
    raise BadResponse(
        f"The server at {url} sent more than {limit} bytes for {what}; it was not used. "
        f"Check that the address is the style transfer server's (`nst-server`)."
    )


def _preview_byte_limit(size: int) -> int:
    """The most bytes a PNG of at most ``size`` x ``size`` pixels needs: 16-bit RGBA stored
    without compression (8 bytes a pixel), a filter byte a row, and room for its chunks."""
    return 8 * size * size + size + (1 << 16)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header (IHDR is always the first chunk), or None if
    ``data`` does not start like a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# ------------------------------------------------------------------------------------- client
class Client:
    """Talks to one server. Methods block; call them off the editor's UI thread."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 60.0,
        token_source: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        # Where the token came from, named in AuthError so the artist knows what to fix.
        self.token_source = token_source

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> Client:
        """Find the server: ``NST_SERVER_URL``/``NST_TOKEN`` first, then ``connection.json``."""
        env = os.environ if env is None else env
        path = connection_file(env=env)
        url = env.get("NST_SERVER_URL") or ""
        token = env.get("NST_TOKEN") or ""
        source = "the NST_TOKEN environment variable" if token else ""
        if not (url and token):
            saved = _read_connection(path)
            if not url:
                url = str(saved.get("url") or "")
            if not token and saved.get("token"):
                token = str(saved["token"])
                source = f"the connection file {path}"
        if not url:
            raise ServerUnavailable(
                f"The style transfer server has not been started on this computer "
                f"(no {path} and no NST_SERVER_URL). {START_HINT}"
            )
        return cls(url, token or None, timeout=timeout, token_source=source)

    # ------------------------------------------------------------------------------ transport
    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        auth: bool = True,
        limit: int = MAX_JSON_BYTES,
        what: str = "an answer",
        timeout: float | None = None,
    ) -> bytes:
        """The answer's body, at most ``limit`` bytes (``what`` names it in the error);
        ``timeout`` overrides the client's for this request."""
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        if auth and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=timeout or self.timeout) as response:
                return _read_bounded(response, limit, what, self.url)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # HTTPException: an answer cut short (IncompleteRead, BadStatusLine) is what a
            # server killed mid-answer leaves; like silence, it means the server is gone.
            reason = getattr(exc, "reason", exc)
            raise ServerUnavailable(
                f"Cannot reach the style transfer server at {self.url} ({reason}). {START_HINT}"
            ) from exc

    def _http_error(self, exc: urllib.error.HTTPError) -> NSTClientError:
        if 300 <= exc.code < 400:
            where = exc.headers.get("Location", "elsewhere") if exc.headers else "elsewhere"
            return BadResponse(
                f"The server at {self.url} answered {exc.code} with a redirect to {where}. "
                f"The style transfer server never redirects, and the client does not follow "
                f"redirects so that the access token goes nowhere else: check the server's "
                f"address (NST_SERVER_URL)."
            )
        raw = exc.read(MAX_JSON_BYTES) or b""
        code, message = "http_error", f"The server answered {exc.code} {exc.reason}."
        try:
            error = json.loads(raw.decode("utf-8"))["error"]
            code, message = str(error.get("code", code)), str(error.get("message", message))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        if exc.code in (401, 403):
            where = self.token_source or "nowhere (no token was found)"
            return AuthError(
                f"The server refused the access token ({message}). The token came from {where}; "
                f"the server writes the current one to {connection_file()} each time it starts. "
                f"Unset NST_TOKEN or restart the server with `nst-server`, then try again."
            )
        if exc.code == 429:
            retry = exc.headers.get("Retry-After") if exc.headers else None
            try:
                retry_after = float(retry) if retry is not None else None
            except ValueError:
                retry_after = None
            return QueueFull(exc.code, code, message, retry_after)
        return ApiError(exc.code, code, message)

    def _json(self, method: str, path: str, auth: bool = True) -> dict:
        return self._json_object(self._request(method, path, auth=auth))

    def _json_object(self, data: bytes) -> dict:
        """The answer as a JSON object; anything else is a BadResponse the artist can read,
        never a ``JSONDecodeError`` that an editor reports as a crash of the plugin."""
        try:
            value = json.loads(data.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is one too
            value = None
        if not isinstance(value, dict):
            raise BadResponse(
                f"The server at {self.url} sent an answer that is not a JSON object "
                f"(it starts with {data[:40]!r}). Is another program listening at that "
                f"address? Check NST_SERVER_URL, or restart `nst-server`."
            )
        return value

    @staticmethod
    def _job_path(job_id: str, suffix: str = "") -> str:
        return f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}{suffix}"

    # ------------------------------------------------------------------------------------ API
    def health(self) -> dict:
        """Server status: device, queue length and limits. Needs no token."""
        return self._json("GET", "/v1/health", auth=False)

    def submit_raw(
        self,
        pixels: bytes,
        width: int,
        height: int,
        channels: str,
        sample: str,
        styles: Sequence[str | os.PathLike],
        settings: Mapping[str, Any] | None = None,
        style_weights: Sequence[float] | None = None,
        mask: bytes | None = None,
    ) -> str:
        """Send raw interleaved pixels (``channels`` "RGBA"/"BGRA", ``sample`` u8/u16/f16/f32)."""
        layout = PixelLayout(channels, sample).as_dict(width, height)
        content = ("content", "content.raw", "application/octet-stream", bytes(pixels))
        return self._submit(
            content, [("layout", json.dumps(layout))], styles, settings, style_weights, mask
        )

    def submit_file(
        self,
        path: str | os.PathLike,
        styles: Sequence[str | os.PathLike],
        settings: Mapping[str, Any] | None = None,
        style_weights: Sequence[float] | None = None,
        mask: bytes | None = None,
    ) -> str:
        """Send an image file (PNG, JPEG, TIFF, WebP) as the content."""
        return self._submit(_image_part("content", path), [], styles, settings, style_weights, mask)

    def _submit(
        self,
        content: tuple[str, str, str, bytes],
        fields: list[tuple[str, str]],
        styles: Sequence[str | os.PathLike],
        settings: Mapping[str, Any] | None,
        style_weights: Sequence[float] | None,
        mask: bytes | None,
    ) -> str:
        if not styles:
            raise NSTClientError("Choose at least one style image.")
        files = [content] + [_image_part("style", style) for style in styles]
        if mask is not None:
            files.append(("mask", "mask.raw", "application/octet-stream", bytes(mask)))
        if settings:
            fields.append(("settings", json.dumps(dict(settings))))
        if style_weights is not None:
            fields.append(("style_weights", json.dumps([float(w) for w in style_weights])))
        body, content_type = _encode_multipart(fields, files)
        job_id = self._json_object(self._request("POST", "/v1/jobs", body, content_type)).get("id")
        if not isinstance(job_id, str) or not job_id:
            raise BadResponse(f"The server at {self.url} accepted the job but sent no job id. "
                              f"Update the server and the plugin together.")
        return job_id

    def status(self, job_id: str) -> dict:
        """The job's state, progress (iteration/total/percent/eta), queue position and error."""
        return self._json("GET", self._job_path(job_id))

    def preview(self, job_id: str, size: int = 512, timeout: float | None = None
                ) -> bytes | None:
        """The latest preview as PNG bytes (longest side <= ``size``), or None if none yet.

        Both its bytes and, from its header, its dimensions are checked before it is returned,
        so an editor never hands an image decoder a preview larger than it asked for. Asking
        is what makes the server render previews (the next one comes after the next
        iteration, then at most one a second), so ask only as often as they are shown.
        ``timeout`` (default: the client's) lets a caller give up on a preview sooner than on
        the job."""
        size = int(size)
        try:
            data = self._request("GET", self._job_path(job_id, f"/preview?size={size}"),
                                 limit=_preview_byte_limit(size), what="a preview",
                                 timeout=timeout)
        except ApiError as exc:
            if exc.status == 404 and exc.code == "no_preview":
                return None
            raise
        dimensions = _png_size(data)
        if dimensions is None or max(dimensions) > size or min(dimensions) < 1:
            raise BadResponse(
                f"The server at {self.url} sent a preview that is not a PNG of at most "
                f"{size}x{size} pixels ({'not a PNG' if dimensions is None else dimensions}); "
                f"it was not shown."
            )
        return data

    def result(self, job_id: str, max_bytes: int = MAX_RESULT_BYTES) -> bytes:
        """The finished result, in the same layout (raw) or file type as the content was sent;
        BadResponse if it is longer than ``max_bytes``."""
        return self._request("GET", self._job_path(job_id, "/result"), limit=max_bytes,
                             what=f"the result of job {job_id}")

    def cancel(self, job_id: str) -> dict:
        """Ask the server to cancel a queued or running job; returns its status."""
        return self._json("DELETE", self._job_path(job_id))

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[dict], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        poll_interval: float = 0.5,
        gone_after: float = 5.0,
    ) -> dict:
        """Poll until the job ends; returns the final status when it is ``done``.

        ``on_progress(status)`` sees every status polled. When ``should_cancel()`` turns true the
        job is cancelled on the server and JobCancelled is raised. If the server stops answering
        for ``gone_after`` seconds, ServerGone carries the job id so ``wait`` can be called again
        once the server is back.
        """
        cancel_sent = False
        unreachable_since: float | None = None
        while True:
            if should_cancel is not None and not cancel_sent and should_cancel():
                # Already finished or unknown: the next status tells which.
                with contextlib.suppress(ApiError):
                    self.cancel(job_id)
                cancel_sent = True
            try:
                status = self.status(job_id)
            except ServerUnavailable as exc:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if cancel_sent or now - unreachable_since >= gone_after:
                    raise ServerGone(
                        f"The style transfer server at {self.url} stopped answering while job "
                        f"{job_id} was running. Restart it with `nst-server`; the job can then "
                        f"be resumed (job id {job_id}).",
                        job_id,
                    ) from exc
                time.sleep(poll_interval)
                continue
            unreachable_since = None
            if on_progress is not None:
                on_progress(status)
            state = status.get("state")
            if state == "done":
                return status
            if state == "failed":
                raise JobFailed(
                    str(status.get("error") or "The server could not finish the job."), job_id
                )
            if state == "cancelled":
                raise JobCancelled(job_id)
            time.sleep(poll_interval)


# ------------------------------------------------------------------------------------- a job
def run_job(
    client: Client,
    request: StyleRequest,
    *,
    on_status: Callable[[dict], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    job_id: str | None = None,
    on_job_id: Callable[[str], None] | None = None,
    while_running: Callable[[str], contextlib.AbstractContextManager] | None = None,
) -> bytes:
    """Submit ``request`` (or resume ``job_id``), wait, fetch the result and check its size.

    The flow both plugins run; blocks, so call it off the editor's UI thread. ``on_job_id``
    hears the id as soon as the server has it (a plugin keeps it to resume after ServerGone);
    ``while_running(job_id)`` is a context manager held while the job runs (GIMP's watchdog
    that cancels the job should GIMP kill the plug-in). Returns the result in
    ``request.layout``; raises the errors above, whose messages say what to do.
    """
    if job_id is None:
        job_id = client.submit_raw(
            request.pixels,
            request.width,
            request.height,
            request.layout.channels,
            request.layout.sample,
            request.styles,
            request.settings,
            mask=request.mask,
        )
    if on_job_id is not None:
        on_job_id(job_id)
    with while_running(job_id) if while_running is not None else contextlib.nullcontext():
        client.wait(job_id, on_progress=on_status, should_cancel=should_cancel)
        expected = request.layout.byte_count(request.width, request.height)
        data = client.result(job_id, max_bytes=expected)
    if len(data) != expected:
        raise NSTClientError(
            f"The server sent {len(data)} bytes instead of {expected}; the result was not "
            f"applied. Update the server (`nst-server --version`) and the plugin together "
            f"(`nst-server install-plugin krita` or `gimp`)."
        )
    return data
