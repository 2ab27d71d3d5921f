"""The cached Debian chroots that hold the editors: building them, mounting into them.

Why chroots: the plugins must be proven in the editors artists really use, and Debian ships
them with their Pythons while the host may be older. There is one chroot per *generation*:
Debian 13 (trixie) has GIMP 3.0 and Krita 5.2, what long-term distributions carry; Debian
unstable (sid) has GIMP 3.2 and Krita 5.3, what an artist who installs an editor today gets.
Each is built once by debootstrap (a few minutes, about 2 GB) and cached; every run then only
mounts /proc and /dev in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("gimp", "krita", "python3-gi", "python3-pyqt5", "xvfb", "xauth", "xdotool")
STAMP_NAME = ".nst-editors-stamp.json"  # inside the chroot, written only after a complete build
MOUNT_STATE_NAME = ".nst-mounts.json"  # inside the chroot, so it moves with the finished build
MOUNT_LOCK_NAME = ".nst-mounts.lock"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOW_TO_RUN = "run them as root: `sudo .venv/bin/pytest tests/editors`"


class HarnessUnavailable(Exception):
    """The chroot cannot be built or entered here; editor tests skip with this message."""


@dataclass(frozen=True)
class Generation:
    """A Debian suite and the GIMP and Krita series it ships, tested side by side."""

    suite: str
    gimp: str  # minor series, as in GIMP's profile folder and program names ("3.2")
    krita: str
    cache_name: str  # folder under .cache/
    env_var: str  # overrides the cache folder, e.g. to share one chroot between worktrees
    #: Extra apt options: sid's Release file on the mirror is past its Valid-Until date, which
    #: apt refuses by default (debootstrap does not check it).
    apt_options: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The test id, e.g. ``gimp3.0-krita5.2``."""
        return f"gimp{self.gimp}-krita{self.krita}"

    def chroot_dir(self) -> Path:
        """``$<env_var>`` or ``.cache/<cache_name>`` at the repository root (git-ignored)."""
        return Path(os.environ.get(self.env_var) or REPO_ROOT / ".cache" / self.cache_name)


GENERATIONS = (
    Generation("trixie", "3.0", "5.2", "editors-chroot", "NST_EDITOR_CHROOT"),
    Generation("sid", "3.2", "5.3", "editors-chroot-sid", "NST_EDITOR_CHROOT_SID",
               ("-o", "Acquire::Check-Valid-Until=false")),
)


# ----------------------------------------------------------------------------- locks and mounts
@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock that the kernel drops if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process_key(pid: int) -> str | None:
    """``pid:start-time``: unlike a bare pid it cannot be mistaken for a recycled process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def _alive(key: str) -> bool:
    return _process_key(int(key.split(":")[0])) == key


def _decode_mount_path(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _mount_points() -> list[str]:
    """Every mount point, once per mount (stacked mounts repeat), decoded from mountinfo."""
    with open("/proc/self/mountinfo") as handle:
        return [_decode_mount_path(line.split()[4]) for line in handle]


def mounts_below(root: Path) -> list[str]:
    """Mount points strictly inside ``root`` (stacked ones once), outermost first."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    inside = {p for p in _mount_points() if p.startswith(prefix)}
    return sorted(inside, key=lambda p: p.count("/"))


def _unmount(point: str) -> None:
    """Unmount ``point`` and everything below it (stacked mounts too), lazily if busy.

    The subtree is made a slave first: unmounting inside a recursive bind of a *shared* /dev
    would otherwise propagate to the host's /dev/pts and /dev/shm.
    """
    subprocess.run(["mount", "--make-rslave", point], check=False, capture_output=True)
    if subprocess.run(["umount", "-R", point], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-R", "-l", point], check=False, capture_output=True)
    if point in _mount_points():
        raise RuntimeError(f"could not unmount {point}")


def _unmount_all(root: Path) -> None:
    """Unmount everything inside ``root`` (before deleting a tree: rm must never reach /dev)."""
    for point in mounts_below(root):
        if point in _mount_points():  # not already gone with a parent
            _unmount(point)


# What the editors need inside the chroot: (mount point, mount command). /dev is bound
# recursively, so /dev/shm (Qt, Xvfb) and /dev/pts work, and made a slave so nothing flows back.
_MOUNTS = (
    ("proc", (["mount", "-t", "proc", "proc", "{}"],)),
    ("dev", (["mount", "--rbind", "/dev", "{}"], ["mount", "--make-rslave", "{}"])),
)


def _mount(point: str, commands: Sequence[Sequence[str]]) -> None:
    for command in commands:
        proc = subprocess.run([arg.format(point) for arg in command], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            with contextlib.suppress(RuntimeError):
                _unmount(point)
            raise HarnessUnavailable(f"cannot mount {point}: {proc.stderr.strip()}")


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[Path]:
    """Keep /proc and /dev mounted in the chroot while any process (test run) uses it.

    State (a JSON file inside the chroot, changed under a file lock) lists the users as
    ``pid:start-time`` and the mounts the harness made. The first user mounts what is missing,
    the last one unmounts what the harness mounted (also on failure or Ctrl-C). Mounts that were
    already there and are not the harness's (a colleague working in the chroot by hand) are used
    but never unmounted. Mounts left by a run that was SIGKILLed are the harness's: the next run
    reuses them and unmounts them when it ends.
    """
    root = Path(os.path.realpath(root))
    state_file = root / MOUNT_STATE_NAME

    def load() -> tuple[list[str], list[str]]:
        try:
            state = json.loads(state_file.read_text())
            return [k for k in state["users"] if _alive(k)], list(state["mounted"])
        except (OSError, ValueError, KeyError, TypeError):
            return [], []

    def save(users: list[str], mounted: list[str]) -> None:
        state_file.write_text(json.dumps({"users": users, "mounted": mounted}))

    me = _process_key(os.getpid())
    assert me is not None
    with _flock(root / MOUNT_LOCK_NAME):
        users, mounted = load()
        if not users:
            present = _mount_points()
            mounted = [p for p in mounted if str(root / p) in present]
            for name, commands in _MOUNTS:
                if str(root / name) not in present:
                    _mount(str(root / name), commands)
                    mounted.append(name)
        save([*users, me], mounted)
    try:
        yield root
    finally:
        with _flock(root / MOUNT_LOCK_NAME):
            users, mounted = load()
            if me in users:  # once: this process may hold the mounts twice (nested use)
                users.remove(me)
            if not users:
                for name in mounted:
                    _unmount(str(root / name))
                mounted = []
            save(users, mounted)


# ----------------------------------------------------------------------------- building
def read_stamp(root: Path) -> dict | None:
    try:
        return json.loads((root / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(root: Path, suite: str, packages: Sequence[str]) -> None:
    stamp = {"suite": suite, "packages": sorted(set(packages)),
             "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (root / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")


def _run_logged(argv: Sequence[str], what: str, timeout: float = 1800) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise HarnessUnavailable(f"{what} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _ensure_debootstrap() -> None:
    """Install debootstrap on the host if needed, one caller at a time: the generations are
    built side by side, and two apt-gets at once fail on apt's own lock."""
    with _flock(Path(tempfile.gettempdir()) / "nst-editors-debootstrap.lock"):
        if not shutil.which("debootstrap"):
            _install_debootstrap()


def _install_debootstrap() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "debootstrap"]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise HarnessUnavailable(f"debootstrap is missing and `{' '.join(argv)}` failed: "
                                     f"{proc.stderr[-1000:]}")


def _apt_install(root: Path, generation: Generation, packages: Sequence[str]) -> None:
    with chroot_mounts(root):
        apt = ["chroot", str(root), "/usr/bin/env", "-i", f"PATH={CHROOT_PATH}",
               "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8", "apt-get",
               *generation.apt_options]
        _run_logged([*apt, "update"], "apt-get update in the chroot")
        _run_logged([*apt, "install", "-y", "--no-install-recommends", *packages],
                    f"installing {' '.join(packages)} in the chroot")
        _run_logged([*apt, "clean"], "apt-get clean in the chroot")


def _remove_tree(path: Path) -> None:
    if path.exists():
        _unmount_all(path)
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def ensure_chroot(root: Path, generation: Generation,
                  packages: Sequence[str] = PACKAGES) -> Path:
    """Return a complete chroot of ``generation`` at ``root``: reuse the cache, upgrade it, or
    build it.

    A build happens in ``<root>.partial`` and is renamed into place only once the stamp (the
    suite and package list) is written, so an interrupted build is never taken for a good cache.
    A cache stamped with an older package list gets the missing packages installed; one of
    another suite (an environment variable pointing at the wrong chroot) is refused.
    """
    if os.geteuid() != 0:
        raise HarnessUnavailable(f"real-editor tests need root to build and enter a chroot; "
                                 f"{HOW_TO_RUN}")
    root = Path(os.path.abspath(root))
    with _flock(root.parent / f".{root.name}.build.lock"):
        stamp = read_stamp(root)
        if stamp is None and root.exists():
            raise HarnessUnavailable(f"{root} exists but has no {STAMP_NAME} (not built by this "
                                     f"harness, or damaged): remove it and run again")
        if stamp is None:
            partial = root.with_name(root.name + ".partial")
            _remove_tree(partial)
            _ensure_debootstrap()
            _run_logged(["debootstrap", "--variant=minbase", generation.suite, str(partial),
                         MIRROR], "debootstrap")
            _apt_install(partial, generation, packages)
            _write_stamp(partial, generation.suite, packages)
            partial.rename(root)
        elif stamp.get("suite") != generation.suite:
            raise HarnessUnavailable(f"{root} holds Debian {stamp.get('suite')}, not "
                                     f"{generation.suite}: point {generation.env_var} at a "
                                     f"{generation.suite} chroot, or unset it")
        else:
            missing = [p for p in packages if p not in stamp["packages"]]
            if missing:
                _apt_install(root, generation, missing)
                _write_stamp(root, generation.suite, [*stamp["packages"], *missing])
    _check_series(root, generation)
    return root


def _check_series(root: Path, generation: Generation) -> None:
    """The suite moves on (sid will carry GIMP 3.4 one day): say so instead of testing an
    editor under another version's name."""
    found = {"gimp": series(package_version(root, "gimp")),
             "krita": series(package_version(root, "krita"))}
    wanted = {"gimp": generation.gimp, "krita": generation.krita}
    if found != wanted:
        raise HarnessUnavailable(f"{root} holds {found}, but generation {generation.id} expects "
                                 f"{wanted}: update GENERATIONS in harness_chroot.py")


def series(version: str) -> str:
    """The minor series of an upstream version: "3.2" for "3.2.6"."""
    return ".".join(version.split(".")[:2])


def editor_series(root: Path, editor: str) -> str:
    """The minor series of ``editor`` ("gimp" or "krita") installed in the chroot at ``root``.

    The harness derives program names and profile folders from the chroot itself, so a test
    needs nothing but the chroot's path to run in either generation.
    """
    return series(package_version(root, editor))


def package_version(root: Path, package: str) -> str:
    """The upstream version of a package installed in the chroot ("3.0.4" for 3.0.4-3+deb13u1)."""
    status = (root / "var/lib/dpkg/status").read_text()
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if fields.get("Package") == package and "Version" in fields:
            return fields["Version"].split(":")[-1].split("-")[0]
    raise LookupError(f"{package} is not installed in {root}")
