"""Real Krita 5.2 and 5.3 (kritarunner in the Debian chroots) stylising layers through the plugin's
scripting entry `stylize_node`, against the real server on loopback.

The plugin is installed exactly as `nst-server install-plugin krita` installs it (with the shared
client copied inside), then a script inside Krita opens a PNG with transparency, stylises its layer
and reports the source's pixels before and after, the new layer's pixels and the layer stack.
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from harness import KRITA_PYKRITA, run_krita
from live_server import LiveServer, start_server
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
)

DRAFT = {"preset": "draft", "scales": 1, "initial_iterations": 2, "size": 64}
DTYPES = {"U8": "<u1", "U16": "<u2", "F16": "<f2", "F32": "<f4"}
FULL_SCALE = {"U8": 255.0, "U16": 65535.0, "F16": 1.0, "F32": 1.0}
GONE_AFTER_S = 5  # nst_client.Client.wait: how long the server may be silent before ServerGone

# Runs inside Krita; driven by $NST_IN/plan.json (depth, model, settings, select, resume).
SCRIPT = """\
import json
import os
import sys
import time

from krita import Krita, Selection

sys.path.insert(0, os.path.join(os.environ["HOME"], ".local/share/krita/pykrita"))
from neural_style_transfer import stylize_node
from neural_style_transfer.shared import nst_client

IN, OUT = os.environ["NST_IN"], os.environ["NST_OUT"]
plan = json.load(open(os.path.join(IN, "plan.json")))


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as handle:
        handle.write(data)


def layers():  # the global selection's mask node appears among top-level nodes: not a layer
    return [n.name() for n in doc.topLevelNodes() if n.type() != "selectionmask"]


app = Krita.instance()
app.setBatchmode(True)
doc = app.openDocument(os.path.join(IN, "content.png"))
doc.setBatchmode(True)
if plan.get("depth") or plan.get("model"):
    doc.setColorSpace(plan.get("model") or "RGBA", plan.get("depth") or "U8", "")
if plan.get("select"):
    selection = Selection()
    selection.select(*plan["select"], 255)
    doc.setSelection(selection)
source = doc.topLevelNodes()[0]
width, height = doc.width(), doc.height()
info = {"width": width, "height": height, "model": source.colorModel(),
        "depth": source.colorDepth(), "layers_before": layers()}
save("source_before.bin", bytes(source.pixelData(0, 0, width, height)))


seen = info["progress"] = {"tiles": 0, "plan": ""}  # what the plugin heard from the server


def on_progress(status):
    seen["tiles"] = max(seen["tiles"], status.get("tiles") or 0)
    seen["plan"] = status.get("plan") or seen["plan"]


def stylize(job_id=None):
    return stylize_node(doc, source, os.path.join(IN, "style.png"), plan["settings"],
                        selection_only=bool(plan.get("select")), job_id=job_id,
                        on_progress=on_progress)


def resume_when_back(gone):  # what the dialog's Resume button does, once the server is back
    info["gone"] = {"job_id": gone.job_id, "message": str(gone), "layers": layers()}
    client = nst_client.Client.discover()
    deadline = time.monotonic() + 180
    while True:
        try:
            client.health()
            break
        except nst_client.ServerUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return stylize(job_id=gone.job_id)


try:
    try:
        layer = stylize()
    except nst_client.ServerGone as gone:
        if not plan.get("resume"):
            raise
        layer = resume_when_back(gone)
except Exception as exc:  # the test judges the error's type and message
    info["error"] = {"type": type(exc).__name__, "message": str(exc)}
else:
    info["new_layer"] = {"name": layer.name(), "type": layer.type(),
                         "depth": layer.colorDepth(), "model": layer.colorModel()}
    save("result.bin", bytes(layer.pixelData(0, 0, width, height)))
info["layers_after"] = layers()
save("source_after.bin", bytes(source.pixelData(0, 0, width, height)))
save("info.json", json.dumps(info).encode())
doc.close()
"""


def stylize(root: Path, plugin: Path, url: str, token: str, plan: dict,
            content: np.ndarray | None = None, timeout: float = 300) -> tuple[dict, dict]:
    """Run SCRIPT in Krita with the installed plugin; return its info.json and all its files."""
    result = run_krita(
        root,
        SCRIPT,
        inputs=job_inputs(plan, content),
        home_files={KRITA_PYKRITA: plugin},
        env={"NST_SERVER_URL": url, "NST_TOKEN": token},
        timeout=timeout,
    )
    return json.loads(result.files["info.json"]), result.files


def planes(data: bytes, depth: str, size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.frombuffer(data, DTYPES[depth]).reshape(size[1], size[0], 4)


def assert_stylised(info: dict, files: dict, depth: str) -> tuple[np.ndarray, np.ndarray]:
    """The checks every successful run must pass; returns (source, result) pixels."""
    assert "error" not in info, info.get("error")
    assert (info["width"], info["height"], info["depth"]) == (W, H, depth)
    new = info["new_layer"]
    assert new["name"] == "style (style transfer)"
    assert (new["type"], new["model"], new["depth"]) == ("paintlayer", "RGBA", depth)
    # Exactly one layer added, directly above the source.
    assert info["layers_after"] == [*info["layers_before"], new["name"]]
    assert files["source_after.bin"] == files["source_before.bin"]  # byte-identical source
    source, result = planes(files["source_before.bin"], depth), planes(files["result.bin"], depth)
    assert result.shape == (H, W, 4)  # the whole canvas
    return source, result


def assert_restyled(source: np.ndarray, result: np.ndarray, depth: str) -> None:
    """Nearly every visible pixel changed, by more than a copy through 8 bits could explain.

    Draft settings (two iterations) move colours by only a few levels on average (3.3-3.7 of
    255 seen with the real engine), so this proves the server's result was applied, not that it
    looks stylised; the engine's own tests judge that.
    """
    full = FULL_SCALE[depth]
    visible = source[..., 3] > 0
    change = np.abs(result[..., :3].astype(float) - source[..., :3].astype(float))[visible] / full
    assert (change.max(axis=1) > 0).mean() > 0.9, "most pixels are unchanged"
    assert change.mean() > 1.5 / 255, "the new layer is (nearly) a copy of the source"


def run(root: Path, plugin: Path, server, plan: dict) -> tuple[dict, dict]:
    return stylize(root, plugin, server.url, server.token, {"settings": DRAFT, **plan})


def test_full_resolution_layer_comes_back_at_its_own_size_in_tiles(
    editor_chroot, krita_plugin, live_server
):
    """Issue 12: a 4000x3000 layer sent with "Full resolution" comes back at its own size with
    its alpha, the finest scale run in tiles (a memory budget that forces tiles, and
    sample_images.FULL_RESOLUTION_OVERRIDES to keep it short)."""
    extra = full_resolution_settings(tiles=2)
    content = full_size_pixels()
    info, files = stylize(editor_chroot, krita_plugin, live_server.url, live_server.token,
                          {"settings": {"preset": "full", **extra}}, content, timeout=600)
    assert "error" not in info, info.get("error")
    assert (info["width"], info["height"]) == (FULL_W, FULL_H)
    new = info["new_layer"]
    assert (new["type"], new["model"], new["depth"]) == ("paintlayer", "RGBA", "U8")
    assert info["layers_after"] == [*info["layers_before"], new["name"]]
    assert files["source_after.bin"] == files["source_before.bin"]  # byte-identical source
    size = (FULL_W, FULL_H)
    source = planes(files["source_before.bin"], "U8", size)
    result = planes(files["result.bin"], "U8", size)
    np.testing.assert_array_equal(source[..., 3], content[..., 3])  # the varied alpha arrived
    np.testing.assert_array_equal(result[..., 3], source[..., 3])  # ... and came back bit-equal
    visible = source[..., 3] > 0
    change = np.abs(result[..., :3].astype(int) - source[..., :3].astype(int)).max(axis=2)
    for half in (slice(0, FULL_H // 2), slice(FULL_H // 2, FULL_H)):  # sky, then city
        assert (change[half][visible[half]] > 0).mean() > 0.9, "most pixels are unchanged"
        assert change[half][visible[half]].mean() > 2, "the new layer is (nearly) a copy"
    # The server really ran the layer's own size in tiles, and said so in the job's status.
    assert full_size_tiles(info["progress"]["plan"]) >= 2, info["progress"]
    assert info["progress"]["tiles"] >= 2, info["progress"]


def assert_nothing_changed(info: dict, files: dict) -> None:
    assert info["layers_after"] == info["layers_before"]
    assert files["source_after.bin"] == files["source_before.bin"]


def test_png_with_transparency_is_stylised(editor_chroot, krita_plugin, live_server):
    info, files = run(editor_chroot, krita_plugin, live_server, {})
    source, result = assert_stylised(info, files, "U8")
    # Krita reads the PNG as BGRA; the plugin got exactly the file's pixels.
    np.testing.assert_array_equal(source[..., [2, 1, 0, 3]], content_pixels())
    np.testing.assert_array_equal(result[..., 3], source[..., 3])  # alpha follows the source
    assert_restyled(source, result, "U8")


@pytest.mark.parametrize("depth", ["U16", "F16", "F32"])
def test_high_bit_depth_document_is_stylised(editor_chroot, krita_plugin, live_server, depth):
    info, files = run(editor_chroot, krita_plugin, live_server, {"depth": depth})
    source, result = assert_stylised(info, files, depth)
    np.testing.assert_array_equal(result[..., 3], source[..., 3])
    assert_restyled(source, result, depth)
    visible = source[..., 3] > 0
    # Real high-bit data came back, not 8-bit values stretched (u16: v * 257 for all v).
    if depth == "U16":
        assert np.any(result[..., :3][visible] % 257 != 0)


def test_only_inside_the_selection(editor_chroot, krita_plugin, live_server):
    info, files = run(editor_chroot, krita_plugin, live_server, {"select": [0, 0, W // 2, H]})
    source, result = assert_stylised(info, files, "U8")
    np.testing.assert_array_equal(result[:, W // 2 :, 3], 0)  # transparent outside
    np.testing.assert_array_equal(result[:, : W // 2, 3], source[:, : W // 2, 3])


def test_dead_server_gives_the_documented_error_and_changes_nothing(editor_chroot, krita_plugin):
    with socket.socket() as probe:  # a loopback port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    info, files = stylize(editor_chroot, krita_plugin, dead, "token", {"settings": DRAFT})
    assert info["error"]["type"] == "ServerUnavailable"
    assert "Start it with `nst-server`" in info["error"]["message"]
    assert_nothing_changed(info, files)


@pytest.mark.parametrize("model", ["CMYKA", "LABA", "GRAYA"])
def test_other_colour_models_are_refused_with_advice(editor_chroot, krita_plugin, live_server,
                                                     model):
    info, files = run(editor_chroot, krita_plugin, live_server, {"model": model, "depth": "U8"})
    assert info["model"] == model
    assert info["error"]["type"] == "UnsupportedColor"
    assert "Convert Image Color Space" in info["error"]["message"]
    assert "RGB/Alpha" in info["error"]["message"]
    assert_nothing_changed(info, files)


def crash_and_restart_while_running(server: LiveServer) -> None:
    """SIGKILL the server once it runs a job; bring it back after the plugin has given up."""
    deadline = time.monotonic() + 120
    while requests.get(f"{server.url}/v1/health", timeout=10).json()["running"] == 0:
        assert time.monotonic() < deadline, "the job never started running"
        time.sleep(0.05)
    server.kill()
    time.sleep(GONE_AFTER_S + 1)
    server.restart()


def test_a_job_survives_a_server_crash_and_is_resumed(editor_chroot, krita_plugin, tmp_path):
    with start_server(tmp_path / "server") as server, ThreadPoolExecutor(1) as pool:
        crash = pool.submit(crash_and_restart_while_running, server)
        info, files = run(editor_chroot, krita_plugin, server, {"resume": True})
        crash.result()
    assert "gone" in info, info.get("error") or "the job ended before the server was killed"
    gone = info["gone"]
    assert f"resumed (job id {gone['job_id']})" in gone["message"]
    assert gone["layers"] == info["layers_before"]  # nothing added while the server was away
    source, result = assert_stylised(info, files, "U8")
    np.testing.assert_array_equal(result[..., 3], source[..., 3])
    assert_restyled(source, result, "U8")
