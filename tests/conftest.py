"""Fixtures shared by every test folder: the real server, started once per test session.

tests/unit     the engine, the client and the installers, in-process (seconds each)
tests/http     the real server over loopback, driven with requests
tests/editors  real Krita and GIMP in Debian chroots (two generations), against the real server
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from live_server import LiveServer, start_server

#: An editor generation's test id in a node id, e.g. ``[gimp3.0-krita5.2]`` (see
#: ``Generation.id`` in tests/editors/harness_chroot.py).
_GENERATION_ID = re.compile(r"gimp\d+\.\d+-krita\d+\.\d+")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``pytest -n N`` (pytest-xdist): each editor generation on a worker of its own.

    A generation's tests share one chroot, its session fixtures and the editors' profiles in it,
    so they run one after another in one process. The two generations run side by side, which
    halves the longest part of the suite, and the unit and http tests are spread over the
    workers left. xdist's loadscope puts the largest groups first, so both generations start at
    once. (xdist's own ``loadgroup`` mark would do this, but with pytest 9.2 its groups are
    silently ignored: it rewrites ``item._nodeid``, which pytest no longer reads.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class ByEditorGeneration(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            found = _GENERATION_ID.search(nodeid)
            return found.group() if found else nodeid

    return ByEditorGeneration(config, log)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One ``nst-server`` on a free 127.0.0.1 port, with its own data, config and token."""
    with start_server(tmp_path_factory.mktemp("nst-server")) as server:
        yield server
