"""The package as a user gets it: a wheel, installed (not editable) into a fresh virtual
environment, from which ``install-plugin`` works with no source tree in sight.

The fresh environment reuses this test run's packages (torch and the rest) through a ``.pth``
file rather than installing them, so the test needs no network; the project itself comes from
the wheel only (``.pth`` lines add folders to ``sys.path`` without running the editable
install's hooks found there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What the build needs from the checkout: the rest (tests, benchmarks, caches, a chroot) is
#: left behind, so that the build cannot read them by mistake and the copy stays small.
LEFT_BEHIND = shutil.ignore_patterns(
    ".*", "__pycache__", "*.egg-info", "build", "dist", "tests", "bench", "docs")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "neural-style-transfer"
    shutil.copytree(ROOT, source, ignore=LEFT_BEHIND)
    # A stray cache in the plugins must not travel into the wheel.
    cache = source / "plugins" / "krita" / "neural_style_transfer" / "__pycache__"
    cache.mkdir()
    (cache / "dialog.cpython-311.pyc").write_bytes(b"\0")
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(source)], check=True)
    [built] = out.glob("neural_style_transfer-*.whl")
    return built


def test_the_wheel_carries_the_plugins_under_the_projects_own_names(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "nst_server/plugins/nst_client.py" in names
    assert "nst_server/plugins/krita/neural_style_transfer.desktop" in names
    assert "nst_server/plugins/krita/neural_style_transfer/__init__.py" in names
    assert ("nst_server/plugins/gimp/neural-style-transfer/neural-style-transfer.py"
            in names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    # No bare top-level `server` or `plugins` to collide with other projects' in site-packages.
    assert {name.split("/")[0] for name in names if "dist-info" not in name} == {
        "nst_engine", "nst_server"}


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=True)
    bin_dir = env / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True)
    reused = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site.stdout.strip(), "reused-test-packages.pth").write_text("\n".join(reused) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True)
    return bin_dir


def isolated_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "GIMP3_", "NST_", "PYTHON"))}
    return {**env, "HOME": str(home), "PATH": os.defpath}


def test_install_plugin_works_from_the_installed_wheel(installed, tmp_path):
    home = tmp_path / "home"
    (home / ".config/GIMP/3.0").mkdir(parents=True)
    env = isolated_env(home)
    where = subprocess.run(
        [str(installed / "python"), "-c", "import nst_server; print(nst_server.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout

    for editor in ("krita", "gimp"):
        done = subprocess.run([str(installed / "nst-server"), "install-plugin", editor],
                              capture_output=True, text=True, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr

    krita = home / ".local/share/krita/pykrita"
    assert (krita / "neural_style_transfer.desktop").is_file()
    for name in ("__init__.py", "nst_client.py", "nst_options.py"):
        assert (krita / "neural_style_transfer" / name).is_file()
    assert "enable_neural_style_transfer=true" in (home / ".config/kritarc").read_text()
    gimp = home / ".config/GIMP/3.0/plug-ins/neural-style-transfer"
    assert os.access(gimp / "neural-style-transfer.py", os.X_OK)
    assert (gimp / "nst_client.py").read_bytes() == (ROOT / "plugins/nst_client.py").read_bytes()

    record = json.loads((home / ".config/nst-server/launch.json").read_text())
    assert record["command"][:4] == [str(installed / "python"), "-m", "nst_server", "serve"]
    # The command the editors will run starts this installation's server.
    help_text = subprocess.run([*record["command"][:4], "--help"], capture_output=True,
                               text=True, cwd=tmp_path, env=env, check=True).stdout
    assert "--idle-timeout" in help_text


def test_package_plugin_works_from_the_installed_wheel(installed, tmp_path):
    archive = tmp_path / "nst-gimp.zip"
    subprocess.run([str(installed / "nst-server"), "package-plugin", "gimp", "-o", str(archive)],
                   check=True, cwd=tmp_path, env=isolated_env(tmp_path))
    assert "neural-style-transfer/neural-style-transfer.py" in zipfile.ZipFile(archive).namelist()
