"""Fixtures for the real-editor tests: one cached, mounted Debian chroot per editor generation.

Every test that uses ``editor_chroot`` runs once per generation (harness.GENERATIONS): in
Debian 13's GIMP 3.0 and Krita 5.2, and in Debian unstable's GIMP 3.2 and Krita 5.3, with ids
``gimp3.0-krita5.2`` and ``gimp3.2-krita5.3`` (select one with ``-k``). Fixtures built on it
(plugin installs) follow along. Every test in this folder is marked ``editor``.

``NST_EDITOR_TESTS`` says what happens when a chroot cannot be built or entered:

- ``require`` (the default for root): fail. CI runs the README's test command as root, so a
  broken chroot build can never pass there as "skipped".
- ``auto`` (the default otherwise): skip, with a reason saying how to run the tests.
- ``skip``: skip without trying (e.g. a root shell without network access).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
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


_background_builds: list[threading.Thread] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the selected generations' missing chroots in the background, side by side.

    A fresh machine (CI) needs every chroot (a few minutes each, mostly downloading and
    unpacking). Under ``pytest -n 3`` each generation's process waits for its own chroot while
    the third runs the unit tests; without ``-n`` the editor tests come first (tests/editors
    sorts before http and unit) and the second generation's chroot is built during the first
    one's tests. Every pytest process (each xdist worker collects) starts these threads, and
    the build lock lets one build while the others wait and then find it done.
    ``editor_chroot`` takes the same lock, so it waits for a build still running, and a failed
    build fails again there, with its error.
    """
    if _mode() == "skip" or os.geteuid() != 0 or session.config.option.collectonly:
        return
    selected = {item.callspec.params["editor_generation"] for item in session.items
                if "editor_generation" in getattr(getattr(item, "callspec", None), "params", {})}
    for generation in sorted(selected, key=harness.GENERATIONS.index):
        if harness.read_stamp(generation.chroot_dir()) is None:
            thread = threading.Thread(target=_build_quietly, args=(generation,),
                                      name=f"build {generation.id}", daemon=True)
            thread.start()
            _background_builds.append(thread)


def _build_quietly(generation: harness.Generation) -> None:
    with contextlib.suppress(Exception):  # editor_chroot builds again and reports the error
        harness.ensure_chroot(generation.chroot_dir(), generation)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run that ends early still lets a build finish, so no half-made chroot stays mounted."""
    for thread in _background_builds:
        thread.join()


def _mode() -> str:
    return os.environ.get("NST_EDITOR_TESTS") or ("require" if os.geteuid() == 0 else "auto")


def _unavailable(reason: str) -> None:
    if _mode() == "require":
        pytest.fail(f"real-editor tests required but unavailable: {reason} (set "
                    f"NST_EDITOR_TESTS=skip to skip them)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", params=harness.GENERATIONS, ids=lambda g: g.id)
def editor_generation(request: pytest.FixtureRequest) -> harness.Generation:
    """The Debian suite and editor series the test runs against."""
    return request.param


@pytest.fixture(scope="session")
def editor_chroot(editor_generation: harness.Generation) -> Iterator[Path]:
    """The generation's cached chroot (built on first use), with /proc and /dev mounted while
    its tests run.

    SIGTERM is turned into an exception while mounted, so a terminated run still unmounts; a
    SIGKILLed run leaves stale mounts that the next run detects and replaces.
    """
    if _mode() == "skip":
        pytest.skip(f"NST_EDITOR_TESTS=skip; to run them, unset it and {harness.HOW_TO_RUN}")
    try:
        root = harness.ensure_chroot(editor_generation.chroot_dir(), editor_generation)
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


@pytest.fixture(scope="session")
def gimp_plugins(tmp_path_factory: pytest.TempPathFactory, editor_chroot: Path) -> Path:
    """A plug-ins folder exactly as `nst-server install-plugin gimp` lays it out for a user
    whose GIMP is the chroot's (no profile yet, so the installer is told the version)."""
    base = tmp_path_factory.mktemp("gimp-install")
    placement = install_plugin("gimp", gimp_version=harness.editor_series(editor_chroot, "gimp"),
                               env={"HOME": str(base)}, platform="linux", flatpak=False)
    (plugin,) = placement.folders
    return plugin.parent


@pytest.fixture
def server_relay(editor_chroot: Path, tmp_path: Path) -> Iterator[ServerRelay]:
    """No server running, and a relay that starts the real one on the host when a plugin in
    the chroot runs the command of ``server_relay.launch_json()`` (see server_relay.py)."""
    relay = ServerRelay(editor_chroot, tmp_path / "server-data")
    try:
        yield relay
    finally:
        relay.close()

