"""What keeps other programs and web pages out of a server that listens on the user's machine:
a bearer token, a Host-header check against DNS rebinding, and the connection file."""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from .paths import private_file, write_private

TOKEN_FILE = "token"
CONNECTION_FILE = "connection.json"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def load_or_create_token(config_dir: Path) -> str:
    """The token stored in ``config_dir``, generated (and stored 0600) at the first start.

    A token file found readable by others (copied, or restored from a backup) is made 0600:
    anyone who reads it can use the server."""
    path = config_dir / TOKEN_FILE
    private_file(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = secrets.token_urlsafe(32)
        write_private(path, token + "\n")
    return token


def write_connection(config_dir: Path, url: str, token: str) -> Path:
    """``connection.json`` (0600), read by the plugins' client to find this server."""
    path = config_dir / CONNECTION_FILE
    write_private(path, json.dumps({"url": url, "token": token}, indent=2) + "\n")
    return path


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer ...`` header."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names a request may address: loopback, the bound address, and names asked for."""
    names = set(LOOPBACK_NAMES) | {name.lower().strip("[]") for name in extra}
    if bind_host not in WILDCARDS:
        names.add(bind_host.lower().strip("[]"))
    if bind_host not in LOOPBACK_NAMES:
        # Reached from other machines by this machine's own name.
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def origin_allowed(origin: str | None, own_origin: str) -> bool:
    """True when a request comes from no web page (no ``Origin``: scripts, the plugins) or
    from this server's own origin. Browsers name the page that sends a request in ``Origin``;
    a foreign page is refused before anything else happens, as Jupyter does, so it cannot
    even queue work without the token's help. ``null`` (a sandboxed or local page) is
    foreign too."""
    if origin is None:
        return True
    parts = urlsplit(origin.strip().lower())
    return f"{parts.scheme}://{parts.netloc}" == own_origin.lower() and not parts.path


def host_allowed(host_header: str | None, allowed: frozenset[str], any_ip: bool) -> bool:
    """True when the Host header names this server. A DNS-rebinding page reaches us under its
    own domain name, so names outside ``allowed`` are refused; ``any_ip`` accepts any IP
    literal, which a rebinding attack cannot produce (used when bound to all interfaces)."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name in allowed:
        return True
    if any_ip:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True
    return False
