"""The server's local-machine defences and its agreement with the plugins' client on where
the connection file lives, checked without starting a server."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from nst_server import paths
from nst_server.security import (
    allowed_hosts,
    host_allowed,
    load_or_create_token,
    origin_allowed,
    token_matches,
    write_connection,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

import nst_client


@pytest.mark.parametrize("platform, env", [
    ("linux", {"HOME": "/home/ann"}),
    ("linux", {"HOME": "/home/ann", "XDG_CONFIG_HOME": "/cfg"}),
    ("darwin", {"HOME": "/Users/ann"}),
    ("win32", {"USERPROFILE": r"C:\Users\ann", "APPDATA": r"C:\Users\ann\AppData\Roaming"}),
])
def test_server_writes_the_connection_file_where_the_plugins_look(platform, env):
    assert paths.config_dir(env, platform) == nst_client.config_dir(platform, env)


def test_token_is_made_once_and_private(tmp_path):
    token = load_or_create_token(tmp_path)
    assert len(token) >= 40
    assert load_or_create_token(tmp_path) == token
    connection = write_connection(tmp_path, "http://127.0.0.1:8765", token)
    for path in (tmp_path / "token", connection):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(connection.read_text()) == {"url": "http://127.0.0.1:8765",
                                                  "token": token}


@pytest.mark.parametrize("header, ok", [
    ("Bearer secret", True), ("bearer secret", True), ("Bearer  secret ", True),
    ("Bearer wrong", False), ("Basic secret", False), ("secret", False), ("", False),
    (None, False), ("Bearer ", False),
])
def test_bearer_token_check(header, ok):
    assert token_matches(header, "secret") is ok


@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:8765", True), ("localhost:8765", True), ("[::1]:8765", True),
    ("LOCALHOST", True), ("evil.example:8765", False), ("127.0.0.1.evil.example", False),
    ("192.168.1.5:8765", False), ("", False), (None, False),
])
def test_host_header_on_loopback(host, ok):
    assert host_allowed(host, allowed_hosts("127.0.0.1"), any_ip=False) is ok


def test_host_header_when_bound_to_all_interfaces():
    allowed = allowed_hosts("0.0.0.0", ["studio.lan"])
    assert host_allowed("192.168.1.5:8765", allowed, any_ip=True)
    assert host_allowed("studio.lan:8765", allowed, any_ip=True)
    assert not host_allowed("rebind.attacker.example", allowed, any_ip=True)


@pytest.mark.parametrize("origin, ok", [
    (None, True), ("http://127.0.0.1:8765", True), ("HTTP://LOCALHOST:8765", False),
    ("http://127.0.0.1:8766", False), ("https://127.0.0.1:8765", False),
    ("http://evil.example", False), ("null", False), ("", False),
    ("http://127.0.0.1:8765.evil.example", False),
])
def test_only_requests_from_no_page_or_our_own_origin_are_allowed(origin, ok):
    assert origin_allowed(origin, "http://127.0.0.1:8765") is ok
