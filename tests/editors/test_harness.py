"""Proof that the harness drives the real editors: read a layer, add a layer, save, compare.

Each editor opens a small RGBA PNG, returns the layer's pixels as it reads them, adds an opaque
layer on top holding the colour-inverted picture, and saves the image as PNG. The saved file must
show exactly the inverted pixels, and the read pixels must equal the PNG's.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from harness import (
    GENERATIONS,
    GIMP_PLUGINS,
    HOW_TO_RUN,
    KRITA_PYKRITA,
    MOUNT_STATE_NAME,
    REPO_ROOT,
    EditorScriptError,
    HarnessUnavailable,
    chroot_mounts,
    ensure_chroot,
    gui_screenshot,
    mounts_below,
    run_gimp,
    run_krita,
)
from PIL import Image

W, H = 7, 5

GIMP_SCRIPT = """
import os
from gi.repository import Gegl, Gimp, Gio

src = os.path.join(os.environ["NST_IN"], "in.png")
out = os.environ["NST_OUT"]
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(src))
layer = image.get_layers()[0]
w, h = layer.get_width(), layer.get_height()
rect = Gegl.Rectangle.new(0, 0, w, h)
rgba = bytes(layer.get_buffer().get(rect, 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP))
open(os.path.join(out, "read.bin"), "wb").write(rgba)

inverted = bytearray(rgba)
for i in range(0, len(inverted), 4):
    inverted[i:i + 3] = bytes(255 - v for v in inverted[i:i + 3])
    inverted[i + 3] = 255
new = Gimp.Layer.new(image, "inverted", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0,
                     Gimp.LayerMode.NORMAL)
image.insert_layer(new, None, 0)
buffer = new.get_buffer()
buffer.set(rect, "R'G'B'A u8", bytes(inverted))
buffer.flush()
new.update(0, 0, w, h)
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image,
               Gio.File.new_for_path(os.path.join(out, "saved.png")), None)
"""

KRITA_SCRIPT = """
import os
from krita import InfoObject, Krita

app = Krita.instance()
app.setBatchmode(True)
doc = app.openDocument(os.path.join(os.environ["NST_IN"], "in.png"))
doc.setBatchmode(True)
layer = doc.topLevelNodes()[0]
w, h = doc.width(), doc.height()
bgra = bytes(layer.pixelData(0, 0, w, h))
open(os.path.join(os.environ["NST_OUT"], "read.bin"), "wb").write(bgra)

inverted = bytearray(bgra)
for i in range(0, len(inverted), 4):
    inverted[i:i + 3] = bytes(255 - v for v in inverted[i:i + 3])
    inverted[i + 3] = 255
new = doc.createNode("inverted", "paintlayer")
doc.rootNode().addChildNode(new, None)
new.setPixelData(bytes(inverted), 0, 0, w, h)
doc.refreshProjection()
doc.waitForDone()
doc.exportImage(os.path.join(os.environ["NST_OUT"], "saved.png"), InfoObject())
doc.close()
"""


def _source() -> np.ndarray:
    """RGBA with a gradient, a pure-colour corner and every alpha from opaque to clear."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(H, W, 4), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)
    pixels[..., 3] = np.linspace(255, 40, W, dtype=np.uint8)[None, :]
    return pixels


def _expected_saved(source: np.ndarray) -> np.ndarray:
    expected = source.copy()
    expected[..., :3] = 255 - expected[..., :3]
    expected[..., 3] = 255
    return expected


def _saved_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


@pytest.fixture
def source_png(tmp_path: Path) -> tuple[np.ndarray, Path]:
    pixels = _source()
    path = tmp_path / "in.png"
    Image.fromarray(pixels, "RGBA").save(path)
    return pixels, path


def test_gimp_reads_layer_and_saves_new_layer(editor_chroot: Path, source_png) -> None:
    pixels, path = source_png
    result = run_gimp(editor_chroot, GIMP_SCRIPT, inputs={"in.png": path}, timeout=240)
    read = np.frombuffer(result.files["read.bin"], np.uint8).reshape(H, W, 4)
    np.testing.assert_array_equal(read, pixels)
    np.testing.assert_array_equal(_saved_pixels(result.files["saved.png"]),
                                  _expected_saved(pixels))


def test_krita_reads_layer_and_saves_new_layer(editor_chroot: Path, source_png) -> None:
    pixels, path = source_png
    result = run_krita(editor_chroot, KRITA_SCRIPT, inputs={"in.png": path}, timeout=240)
    bgra = np.frombuffer(result.files["read.bin"], np.uint8).reshape(H, W, 4)
    np.testing.assert_array_equal(bgra[..., [2, 1, 0, 3]], pixels)
    np.testing.assert_array_equal(_saved_pixels(result.files["saved.png"]),
                                  _expected_saved(pixels))


def test_script_errors_become_test_failures(editor_chroot: Path) -> None:
    """Exit statuses say nothing; the traceback from inside the editor must reach the test."""
    with pytest.raises(EditorScriptError, match="ZeroDivisionError"):
        run_gimp(editor_chroot, "1 / 0", timeout=240)



# ----------------------------------------------------------------------------- GUI
GIMP_PROBE_PLUGIN = """#!/usr/bin/env python3
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp


class Probe(Gimp.PlugIn):
    def do_query_procedures(self):
        return ["nst-harness-probe"]

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        procedure.set_menu_label("NST harness probe")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, data):
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


Gimp.main(Probe.__gtype__, sys.argv)
"""

GIMP_PROBE_ACTION = """
import os
from gi.repository import Gimp

procedure = Gimp.get_pdb().lookup_procedure("nst-harness-probe")
with open(os.path.join(os.environ["NST_OUT"], "menus.txt"), "w") as handle:
    handle.write("\\n".join(procedure.get_menu_paths()))
"""

KRITA_PROBE_PLUGIN = """
from krita import Extension, Krita


class Probe(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        window.createAction("nst_harness_probe", "NST harness probe", "filter")


Krita.instance().addExtension(Probe(Krita.instance()))
"""

KRITA_PROBE_DESKTOP = """[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library=nst_harness_probe
X-Python-2-Compatible=false
Name=NST harness probe
"""

KRITA_PROBE_ACTION = """
import os
from krita import Krita

menu_bar = Krita.instance().activeWindow().qwindow().menuBar()
menu = next(a.menu() for a in menu_bar.actions() if a.text().replace("&", "") == "Filter")
with open(os.path.join(os.environ["NST_OUT"], "menus.txt"), "w") as handle:
    handle.write("\\n".join(a.text() for a in menu.actions()))
"""


def _assert_real_screenshot(path: Path) -> None:
    """The whole screen, and not blank: something was drawn."""
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (800, 1280, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50


def test_gimp_gui_loads_a_plugin_and_gives_a_screenshot(editor_chroot: Path,
                                                        tmp_path: Path) -> None:
    plugin = tmp_path / "nst-harness-probe.py"
    plugin.write_text(GIMP_PROBE_PLUGIN)
    plugin.chmod(0o755)
    result = gui_screenshot(
        editor_chroot, "gimp", "harness-gimp-gui", action=GIMP_PROBE_ACTION,
        home_files={f"{GIMP_PLUGINS}/nst-harness-probe/nst-harness-probe.py": plugin},
    )
    assert result.files["menus.txt"] == b"<Image>/Filters/Artistic"
    _assert_real_screenshot(result.screenshot)


def test_krita_gui_loads_a_plugin_and_gives_a_screenshot(editor_chroot: Path) -> None:
    result = gui_screenshot(
        editor_chroot, "krita", "harness-krita-gui", action=KRITA_PROBE_ACTION,
        home_files={f"{KRITA_PYKRITA}/nst_harness_probe.desktop": KRITA_PROBE_DESKTOP,
                    f"{KRITA_PYKRITA}/nst_harness_probe/__init__.py": KRITA_PROBE_PLUGIN},
        krita_plugins=["nst_harness_probe"],
    )
    assert "NST harness probe" in result.files["menus.txt"].decode().splitlines()
    _assert_real_screenshot(result.screenshot)

# ----------------------------------------------------------------------------- mounts
# These use an empty folder as the "chroot": mounting needs root, but not the editors.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=f"mounting needs root; {HOW_TO_RUN}")

HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[2])
import harness
with harness.chroot_mounts(sys.argv[1]):
    print("mounted", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def fake_root() -> Iterator[Path]:
    """A fixed, never deleted folder: a /dev leaked there is never wiped by a tmp-dir cleanup."""
    root = REPO_ROOT / ".cache" / "mount-test-root"
    for name in ("proc", "dev"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / MOUNT_STATE_NAME).unlink(missing_ok=True)
    assert mounts_below(root) == [], "a previous run leaked mounts"
    yield root
    leaked = mounts_below(root)
    for point in leaked:
        subprocess.run(["umount", "-R", "-l", point], check=False)
    assert not leaked, f"mounts leaked: {leaked}"


@contextlib.contextmanager
def _holder(root: Path) -> Iterator[subprocess.Popen]:
    """Another process (another pytest run) using the same chroot."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "mounted\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _mounted(root: Path) -> set[str]:
    return {Path(p).name for p in mounts_below(root) if Path(p).parent == root}


@needs_root
def test_last_user_unmounts_even_after_a_failure(fake_root: Path) -> None:
    with pytest.raises(RuntimeError, match="test failed"), chroot_mounts(fake_root):
        assert _mounted(fake_root) == {"proc", "dev"}
        assert (fake_root / "dev" / "null").exists()
        with _holder(fake_root) as other:
            other.kill()  # it dies without leaving; the mounts stay for us
            other.wait()
            assert _mounted(fake_root) == {"proc", "dev"}
        raise RuntimeError("test failed")
    assert mounts_below(fake_root) == []


@needs_root
def test_mounts_of_a_killed_run_are_reused_then_removed(fake_root: Path) -> None:
    with _holder(fake_root) as other:
        other.kill()  # SIGKILL: no cleanup at all
    assert _mounted(fake_root) == {"proc", "dev"}
    with chroot_mounts(fake_root):
        assert _mounted(fake_root) == {"proc", "dev"}
    assert mounts_below(fake_root) == []


@needs_root
def test_mounts_made_by_hand_are_left_alone(fake_root: Path) -> None:
    subprocess.run(["mount", "-t", "proc", "proc", str(fake_root / "proc")], check=True)
    with chroot_mounts(fake_root):
        assert _mounted(fake_root) == {"proc", "dev"}
    assert _mounted(fake_root) == {"proc"}
    subprocess.run(["umount", str(fake_root / "proc")], check=True)


@needs_root
def test_a_chroot_of_another_suite_is_refused(tmp_path: Path) -> None:
    """NST_EDITOR_CHROOT_SID pointing at the trixie chroot must not test GIMP 3.0 as 3.2."""
    sid = next(g for g in GENERATIONS if g.suite == "sid")
    (tmp_path / ".nst-editors-stamp.json").write_text(
        '{"suite": "trixie", "packages": ["gimp"]}')
    with pytest.raises(HarnessUnavailable, match="holds Debian trixie, not sid"):
        ensure_chroot(tmp_path, sid)
