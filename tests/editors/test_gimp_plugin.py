"""Real GIMP 3.0 and 3.2 (headless, in the Debian chroots) running the plug-in's PDB procedure.

The plug-in is installed exactly as `nst-server install-plugin gimp` installs it, into the
plug-ins folder of the profile of the GIMP under test, so GIMP registers it at start-up. A
script inside GIMP then opens a PNG with transparency, calls the procedure non-interactively (as
the Python-Fu console or a batch script would) and reports the procedure's registration, its
return values, the layer stack, and the source's and new layer's pixels, read in a fixed format
so the test can compare them.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from harness import GIMP_PLUGINS, gui_screenshot, run_gimp, tail
from PIL import Image
from sample_images import (
    FULL_H,
    FULL_W,
    H,
    W,
    content_pixels,
    full_resolution_settings,
    full_size_pixels,
    full_size_tiles,
    job_inputs,
    png,
)

# A few iterations more than the least: two barely move the pixels (mean change < 4 of 255).
DRAFT = {"preset": "draft", "scales": 1, "initial_iterations": 10, "size": 64}
# plan["precision"] -> (Gimp.Precision member, format the test reads pixels in, numpy dtype)
PRECISIONS = {
    "u8": ("U8_NON_LINEAR", "R'G'B'A u8", "<u1"),
    "u16": ("U16_NON_LINEAR", "R'G'B'A u16", "<u2"),
    "f32": ("FLOAT_LINEAR", "RGBA float", "<f4"),
}

# Runs inside GIMP; driven by $NST_IN/plan.json.
SCRIPT = """\
import json
import os

from gi.repository import Gegl, Gimp, Gio

IN, OUT = os.environ["NST_IN"], os.environ["NST_OUT"]
plan = json.load(open(os.path.join(IN, "plan.json")))


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as handle:
        handle.write(data)


def pixels(drawable):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, plan["format"], Gegl.AbyssPolicy.NONE))


def names(image):
    return [layer.get_name() for layer in image.get_layers()]


content = Gio.File.new_for_path(os.path.join(IN, "content.png"))
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, content)
precision = getattr(Gimp.Precision, plan["precision"])
if image.get_precision() != precision:
    image.convert_precision(precision)
if plan.get("select"):
    image.select_rectangle(Gimp.ChannelOps.REPLACE, *plan["select"])
source = image.get_layers()[0]
if plan.get("resize"):  # a layer smaller than the canvas, moved off the origin
    source.resize(*plan["resize"])
procedure = Gimp.get_pdb().lookup_procedure("python-fu-neural-style-transfer")
info = {
    "menu_paths": list(procedure.get_menu_paths()),
    "image": [image.get_width(), image.get_height(), image.get_precision().value_nick],
    "layers_before": names(image),
    "source": [source.get_width(), source.get_height(), *source.get_offsets()[1:]],
    "undo_dirty_before": image.is_dirty(),
}
save("source_before.bin", pixels(source))
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [source])
config.set_property("style", Gio.File.new_for_path(os.path.join(IN, "style.png")))
config.set_property("preset", plan.get("preset", "draft"))
config.set_property("selection-only", bool(plan.get("select")))
config.set_property("extra-settings", json.dumps(plan["settings"]))
result = procedure.run(config)
info["status"] = result.index(0).value_nick
if info["status"] == "success":
    layer = result.index(1)
    info["new_layer"] = {
        "name": layer.get_name(), "size": [layer.get_width(), layer.get_height()],
        "offsets": list(layer.get_offsets()[1:]), "has_alpha": layer.has_alpha(),
        "position": image.get_item_position(layer),
    }
    save("result.bin", pixels(layer))
else:
    info["error"] = result.index(1)
info["layers_after"] = names(image)
save("source_after.bin", pixels(source))
for index, seed in enumerate(plan.get("seeds", [])):  # more runs, for the seed's checks
    config.set_property("seed", seed)
    save(f"seed-{index}.bin", pixels(procedure.run(config).index(1)))
save("info.json", json.dumps(info).encode())
"""


def stylize(root: Path, plugins: Path, url: str, token: str, plan: dict,
            content: np.ndarray | None = None, timeout: float = 300) -> tuple[dict, dict]:
    gimp_precision, read_format, _ = PRECISIONS[plan.get("precision", "u8")]
    plan = {"settings": DRAFT, **plan, "precision": gimp_precision, "format": read_format}
    result = run_gimp(
        root,
        SCRIPT,
        inputs=job_inputs(plan, content),
        home_files={GIMP_PLUGINS: plugins},
        env={"NST_SERVER_URL": url, "NST_TOKEN": token},
        timeout=timeout,
    )
    info = json.loads(result.files["info.json"])
    info["console"] = tail(result.stdout + result.stderr)  # why a run failed, if it did
    return info, result.files


def planes(data: bytes, precision: str, size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.frombuffer(data, PRECISIONS[precision][2]).reshape(size[1], size[0], 4)


def assert_stylised(info: dict, files: dict, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """The checks every successful run must pass; returns (source, result) pixels."""
    assert info["status"] == "success", f"{info.get('error')}\n--- GIMP ---\n{info['console']}"
    new = info["new_layer"]
    assert new["name"] == "style (style transfer)"
    assert new["size"] + new["offsets"] == info["source"]  # exactly over the source
    assert new["position"] == 0  # directly above it
    assert info["layers_after"] == [new["name"], *info["layers_before"]]
    assert files["source_after.bin"] == files["source_before.bin"]  # byte-identical source
    size = tuple(info["source"][:2])
    source = planes(files["source_before.bin"], precision, size)
    return source, planes(files["result.bin"], precision, size)


def test_registered_under_filters_artistic_and_stylises_a_png(
    editor_chroot, gimp_plugins, live_server
):
    """Then the seed (issue 17): runs on "0 = random" differ visibly, one number repeats."""
    info, files = stylize(editor_chroot, gimp_plugins, live_server.url, live_server.token,
                          {"seeds": [0, 7, 7]})
    assert info["menu_paths"] == ["<Image>/Filters/Artistic"]
    assert info["source"] == [W, H, 0, 0]  # so the new layer has the image's size
    source, result = assert_stylised(info, files, "u8")
    np.testing.assert_array_equal(source, content_pixels())  # GIMP read the file's pixels
    np.testing.assert_array_equal(result[..., 3], source[..., 3])  # alpha follows the source
    visible = source[..., 3] > 0
    difference = np.abs(result[..., :3].astype(int) - source[..., :3].astype(int))[visible]
    assert difference.mean() > 5, "the new layer is (nearly) a copy of the source"
    random_again, seven, seven_again = (planes(files[f"seed-{i}.bin"], "u8") for i in range(3))
    np.testing.assert_array_equal(seven, seven_again)
    variation = np.abs(random_again[..., :3].astype(int) - result[..., :3].astype(int))
    assert variation[visible].mean() > 3, "two runs on a random seed gave the same image"


@pytest.mark.parametrize("precision", ["u16", "f32"])
def test_high_bit_depth_image_is_stylised(editor_chroot, gimp_plugins, live_server, precision):
    info, files = stylize(
        editor_chroot, gimp_plugins, live_server.url, live_server.token, {"precision": precision}
    )
    assert info["image"][2] == {"u16": "u16-non-linear", "f32": "float-linear"}[precision]
    source, result = assert_stylised(info, files, precision)
    full = 65535.0 if precision == "u16" else 1.0
    np.testing.assert_allclose(result[..., 3] / full, source[..., 3] / full, atol=1e-6)
    visible = source[..., 3] > 0
    difference = np.abs(result[..., :3].astype(float) - source[..., :3].astype(float)) / full
    assert difference[visible].mean() > 0.02
    if precision == "u16":  # real 16-bit values came back, not 8-bit ones stretched (v * 257)
        assert np.any(result[..., :3][visible] % 257 != 0)


def test_only_inside_the_selection(editor_chroot, gimp_plugins, live_server):
    info, files = stylize(
        editor_chroot,
        gimp_plugins,
        live_server.url,
        live_server.token,
        {"select": [0, 0, W // 2, H]},
    )
    source, result = assert_stylised(info, files, "u8")
    np.testing.assert_array_equal(result[:, W // 2 :, 3], 0)  # transparent outside
    np.testing.assert_array_equal(result[:, : W // 2, 3], source[:, : W // 2, 3])


def test_offset_layer_and_selection_in_image_coordinates(editor_chroot, gimp_plugins, live_server):
    """A 30x20 layer at (5, 4) with the canvas' left half selected: the result covers the layer
    exactly, and the selection's edge (x = 20 on the canvas) is x = 15 inside the layer."""
    info, files = stylize(
        editor_chroot,
        gimp_plugins,
        live_server.url,
        live_server.token,
        {"resize": [30, 20, -5, -4], "select": [0, 0, W // 2, H]},
    )
    assert info["source"] == [30, 20, 5, 4]
    source, result = assert_stylised(info, files, "u8")
    np.testing.assert_array_equal(result[:, 15:, 3], 0)
    np.testing.assert_array_equal(result[:, :15, 3], source[:, :15, 3])


def test_full_resolution_layer_comes_back_at_its_own_size_in_tiles(
    editor_chroot, gimp_plugins, live_server
):
    """Issue 12: a 4000x3000 layer sent with preset "full" comes back at its own size with its
    alpha, the finest scale run in tiles (a memory budget that forces tiles, and
    sample_images.FULL_RESOLUTION_OVERRIDES to keep it short)."""
    extra = full_resolution_settings(tiles=2)
    content = full_size_pixels()
    jobs = live_server.data_dir / "jobs"  # the server keeps one folder per job, named by its id
    before = {folder.name for folder in jobs.iterdir()}
    info, files = stylize(editor_chroot, gimp_plugins, live_server.url, live_server.token,
                          {"preset": "full", "settings": extra}, content, timeout=600)
    assert info["source"] == [FULL_W, FULL_H, 0, 0]
    source, result = assert_stylised(info, files, "u8")  # covers exactly the source's size
    assert result.shape == (FULL_H, FULL_W, 4)
    np.testing.assert_array_equal(source, content)  # GIMP read the file's pixels, varied alpha
    np.testing.assert_array_equal(result[..., 3], source[..., 3])  # alpha came back bit-equal
    visible = source[..., 3] > 0
    change = np.abs(result[..., :3].astype(int) - source[..., :3].astype(int)).max(axis=2)
    for half in (slice(0, FULL_H // 2), slice(FULL_H // 2, FULL_H)):  # sky, then city
        assert (change[half][visible[half]] > 0).mean() > 0.9, "most pixels are unchanged"
        assert change[half][visible[half]].mean() > 2, "the new layer is (nearly) a copy"
    # The plug-in sent one job, and the server ran the layer's own size in tiles.
    (job_id,) = {folder.name for folder in jobs.iterdir()} - before
    request = urllib.request.Request(f"{live_server.url}/v1/jobs/{job_id}",
                                     headers=live_server.headers())
    with urllib.request.urlopen(request, timeout=10) as response:
        status = json.load(response)
    assert status["state"] == "done"
    assert full_size_tiles(status["plan"]) >= 2, status["plan"]


def test_dead_server_returns_an_error_and_leaves_the_image(editor_chroot, gimp_plugins):
    with socket.socket() as probe:  # a loopback port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    info, files = stylize(editor_chroot, gimp_plugins, dead, "token", {})
    assert info["status"] == "execution-error"
    assert "Cannot reach the style transfer server" in info["error"]
    assert "nst-server" in info["error"]
    assert info["layers_after"] == info["layers_before"]
    assert files["source_after.bin"] == files["source_before.bin"]


def test_wrong_token_is_explained_and_leaves_the_image(editor_chroot, gimp_plugins, live_server):
    info, files = stylize(editor_chroot, gimp_plugins, live_server.url, "not-the-token", {})
    assert info["status"] == "execution-error"
    assert "refused the access token" in info["error"]
    assert "NST_TOKEN" in info["error"]  # where the bad token came from, and what to do
    assert info["layers_after"] == info["layers_before"]
    assert files["source_after.bin"] == files["source_before.bin"]


# Runs inside GIMP: starts a long job, kills the plug-in the way GIMP's Cancel button does
# (SIGKILL) once the server runs the job, then times how long the server takes to be idle again.
KILL_SCRIPT = """\
import json
import os
import signal
import threading
import time
import urllib.request

from gi.repository import Gimp, Gio

IN, OUT = os.environ["NST_IN"], os.environ["NST_OUT"]


def running():
    url = os.environ["NST_SERVER_URL"] + "/v1/health"
    health = json.load(urllib.request.urlopen(url, timeout=5))
    return health["running"] + health["queue_length"]


def kill_plug_in():
    deadline = time.monotonic() + 120
    while not running() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"neural-style-transfer.py" in command:
            os.kill(int(pid), signal.SIGKILL)


image = Gimp.file_load(
    Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(IN, "content.png"))
)
procedure = Gimp.get_pdb().lookup_procedure("python-fu-neural-style-transfer")
layers_before = [layer.get_name() for layer in image.get_layers()]
config = procedure.create_config()
config.set_property("image", image)
config.set_core_object_array("drawables", image.get_layers())
config.set_property("style", Gio.File.new_for_path(os.path.join(IN, "style.png")))
plan = json.load(open(os.path.join(IN, "plan.json")))
config.set_property("extra-settings", json.dumps(plan["settings"]))
killer = threading.Thread(target=kill_plug_in)
killer.start()
result = procedure.run(config)
killed_at = time.monotonic()
killer.join()
while running() and time.monotonic() - killed_at < 60:
    time.sleep(0.2)
info = {"status": result.index(0).value_nick, "idle_after": time.monotonic() - killed_at,
        "layers": [layer.get_name() for layer in image.get_layers()],
        "layers_before": layers_before}
open(os.path.join(OUT, "info.json"), "w").write(json.dumps(info))
"""


def test_killing_the_plugin_cancels_the_server_job(editor_chroot, gimp_plugins, live_server):
    """GIMP's Cancel button kills the plug-in; its watchdog must then cancel the server's job."""
    with urllib.request.urlopen(f"{live_server.url}/v1/health", timeout=10) as response:
        limit = json.load(response)["limits"]["max_iterations"]
    long_job = {**DRAFT, "initial_iterations": min(limit, 2000)}  # minutes on a shared CPU
    result = run_gimp(
        editor_chroot,
        KILL_SCRIPT,
        inputs=job_inputs({"settings": long_job}),
        home_files={GIMP_PLUGINS: gimp_plugins},
        env={"NST_SERVER_URL": live_server.url, "NST_TOKEN": live_server.token},
        timeout=300,
    )
    info = json.loads(result.files["info.json"])
    assert info["status"] != "success"  # the run was cut short ...
    assert info["layers"] == info["layers_before"]  # ... leaving the image as it was
    assert info["idle_after"] < 15, "the server kept running the cancelled job"


# Runs inside GIMP's GUI; run() blocks while the dialog is open, and the test never closes it.
DIALOG_ACTION = """\
from gi.repository import Gimp

image = Gimp.get_images()[0]
procedure = Gimp.get_pdb().lookup_procedure("python-fu-neural-style-transfer")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", image.get_selected_drawables())
procedure.run(config)
"""


@pytest.mark.gui
def test_dialog_in_the_gui(editor_chroot, gimp_plugins, live_server):
    """GIMP's ProcedureDialog, kept as tests/artifacts/gimp-dialog-<generation>.png."""
    result = gui_screenshot(
        editor_chroot,
        "gimp",
        "gimp-dialog",
        action=DIALOG_ACTION,
        inputs={"content.png": png(content_pixels())},
        open_files=["content.png"],
        home_files={GIMP_PLUGINS: gimp_plugins},
        env={"NST_SERVER_URL": live_server.url, "NST_TOKEN": live_server.token},
        wait_for_title="Neural Style Transfer",
        crop_to_window=True,
    )
    # GIMP warns when two of the dialog's labels and buttons share a key: Alt+C then pressed
    # Cancel instead of moving to "Content kept" (issue 17).
    assert "duplicate mnemonic" not in result.console, result.console
    shot = Image.open(result.screenshot)
    assert shot.width > 200 and shot.height > 200
    grey_levels = shot.convert("L").getcolors(maxcolors=256)
    assert grey_levels is not None and len(grey_levels) > 20  # drawn widgets, not a blank window
