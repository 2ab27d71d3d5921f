"""Fixtures shared by every test folder: the real server, started once per test session.

tests/unit     the engine, the client and the installers, in-process (seconds each)
tests/http     the real server over loopback, driven with requests
tests/editors  real Krita and GIMP in Debian chroots (two generations), against the real server
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_server import LiveServer, start_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One ``nst-server`` on a free 127.0.0.1 port, with its own data, config and token."""
    with start_server(tmp_path_factory.mktemp("nst-server")) as server:
        yield server
