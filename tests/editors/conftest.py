"""Fixtures for the real-editor tests: one cached, mounted Debian 13 chroot per test session.

Every test in this folder is marked ``editor``. ``NST_EDITOR_TESTS`` says what happens when the
chroot cannot be built or entered:

- ``require`` (the default for root): fail. CI runs the README's plain ``pytest`` as root, so a
  broken chroot build can never pass there as "skipped".
- ``auto`` (the default otherwise): skip, with a reason saying how to run the tests.
- ``skip``: skip without trying (e.g. a root shell without network access).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
from server_relay import ServerRelay

from nst_server.plugin_install import install_plugin


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.editor)


def _mode() -> str:
    return os.environ.get("NST_EDITOR_TESTS") or ("require" if os.geteuid() == 0 else "auto")


def _unavailable(reason: str) -> None:
    if _mode() == "require":
        pytest.fail(f"real-editor tests required but unavailable: {reason} (set "
                    f"NST_EDITOR_TESTS=skip to skip them)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def editor_chroot() -> Iterator[Path]:
    """The cached chroot (built on first use), with /proc and /dev mounted for the session.

    SIGTERM is turned into an exception while mounted, so a terminated run still unmounts; a
    SIGKILLed run leaves stale mounts that the next run detects and replaces.
    """
    if _mode() == "skip":
        pytest.skip(f"NST_EDITOR_TESTS=skip; to run them, unset it and {harness.HOW_TO_RUN}")
    try:
        root = harness.ensure_chroot(harness.default_chroot_dir())
    except harness.HarnessUnavailable as error:
        _unavailable(str(error))
    previous = signal.getsignal(signal.SIGTERM)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        with harness.chroot_mounts(root):
            yield root
    except harness.HarnessUnavailable as error:
        _unavailable(str(error))
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts (git-ignored): screenshots and other files worth looking at after a run."""
    harness.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return harness.ARTIFACTS


@pytest.fixture(scope="session")
def krita_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``pykrita`` folder holding the plugin exactly as `nst-server install-plugin krita` does."""
    base = tmp_path_factory.mktemp("krita-install")
    pykrita = base / "pykrita"
    install_plugin("krita", pykrita, env={"HOME": str(base / "home")}, platform="linux")
    return pykrita


@pytest.fixture
def server_relay(editor_chroot: Path, tmp_path: Path) -> Iterator[ServerRelay]:
    """No server running, and a relay that starts the real one on the host when a plugin in
    the chroot runs the command of ``server_relay.launch_json()`` (see server_relay.py)."""
    relay = ServerRelay(editor_chroot, tmp_path / "server-data")
    try:
        yield relay
    finally:
        relay.close()
