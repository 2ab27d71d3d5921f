"""The GIMP plug-in's windows in the real GUI (GIMP 3.0 and 3.2), driven with real keys.

Keys are pressed through XTest (``xdotool`` in the chroot) on the windows GIMP shows, as an
artist presses them: the dialog's buttons by their mnemonics, the progress window's focused
Cancel button with Return.

- The artist's run shows the plug-in's own progress window instead of GIMP's status-bar
  progress, whose Cancel kills the plug-in. Its Cancel must stop the run cleanly: the server's
  job cancelled, the preview layer gone, the image exactly as before, the run's status CANCEL.
- With no server running, the dialog's Start server button starts it.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from harness import GIMP_PLUGINS, gui_session
from sample_images import job_inputs
from server_relay import LAUNCH_JSON

DIALOG_TITLE = "Neural Style Transfer"
PROGRESS_TITLE = "Neural Style Transfer: progress"

# Runs inside GIMP's GUI: the filter as the artist starts it (its dialog first), with a style
# and a long job already chosen; then what the run left in the image.
ACTION = """\
import json
import os

from gi.repository import Gegl, Gimp, Gio

IN, OUT = os.environ["NST_IN"], os.environ["NST_OUT"]
plan = json.load(open(os.path.join(IN, "plan.json")))
image = Gimp.get_images()[0]
source = image.get_layers()[0]


def names():
    return [layer.get_name() for layer in image.get_layers()]


def save_pixels(name):
    rect = Gegl.Rectangle.new(0, 0, source.get_width(), source.get_height())
    data = source.get_buffer().get(rect, 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE)
    with open(os.path.join(OUT, name), "wb") as handle:
        handle.write(bytes(data))


layers_before = names()
save_pixels("source_before.bin")
procedure = Gimp.get_pdb().lookup_procedure("python-fu-neural-style-transfer")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [source])
config.set_property("style", Gio.File.new_for_path(os.path.join(IN, "style.png")))
config.set_property("extra-settings", json.dumps(plan["settings"]))
result = procedure.run(config)
save_pixels("source_after.bin")
info = {"status": result.index(0).value_nick, "layers_before": layers_before,
        "layers_after": names()}
with open(os.path.join(OUT, "info.json"), "w") as handle:
    json.dump(info, handle)
"""


def _job_status(server, job_id: str) -> dict:
    request = urllib.request.Request(f"{server.url}/v1/jobs/{job_id}", headers=server.headers())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_for(what: str, check, timeout: float = 180, gui=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gui is not None:
            gui.check_alive()
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


@pytest.mark.gui
def test_cancel_in_the_progress_window_leaves_the_image_and_cancels_the_job(
        editor_chroot, gimp_plugins, live_server):
    with urllib.request.urlopen(f"{live_server.url}/v1/health", timeout=10) as response:
        limit = json.load(response)["limits"]["max_iterations"]
    # Minutes on a shared CPU: the job is still running when Cancel is pressed.
    long_job = {"preset": "draft", "scales": 1, "initial_iterations": min(limit, 2000),
                "size": 32}
    jobs = live_server.data_dir / "jobs"
    before = {folder.name for folder in jobs.iterdir()}
    with gui_session(editor_chroot, "gimp", action=ACTION,
                     inputs=job_inputs({"settings": long_job}), open_files=["content.png"],
                     home_files={GIMP_PLUGINS: gimp_plugins},
                     env={"NST_SERVER_URL": live_server.url,
                          "NST_TOKEN": live_server.token}) as gui:
        gui.press(gui.wait_for_window(DIALOG_TITLE, timeout=240), "alt+o")  # the dialog's _OK
        window = gui.wait_for_window(PROGRESS_TITLE)
        job_id = _wait_for("the job's start", lambda: ({f.name for f in jobs.iterdir()}
                                                       - before), gui=gui).pop()
        # A preview is made only when the plug-in asks; it is on the canvas a poll later.
        _wait_for("a preview", lambda: _job_status(live_server, job_id)["has_preview"], gui=gui)
        time.sleep(3)
        gui.screenshot(gui.artifact_name("gimp-progress-window"))
        assert _job_status(live_server, job_id)["state"] == "running"
        gui.press(window, "Return")  # the focused Cancel button
        _wait_for("the end of the run", gui.ws.finished, timeout=60, gui=gui)
        gui.check_warnings()
        files = gui.ws.outputs()
    info = json.loads(files["info.json"])
    assert info["status"] == "cancel", info
    assert info["layers_after"] == info["layers_before"], info  # no preview, no result
    assert files["source_after.bin"] == files["source_before.bin"]
    assert _job_status(live_server, job_id)["state"] == "cancelled"


@pytest.mark.gui
def test_start_server_button_in_the_dialog_starts_the_server(editor_chroot, gimp_plugins,
                                                             server_relay):
    """No server runs (the dialog then says so and shows Start server): Alt+V presses the
    button, which starts the server while the dialog stays open; Alt+C then closes it."""
    with gui_session(editor_chroot, "gimp", action=ACTION, inputs=job_inputs({"settings": {}}),
                     open_files=["content.png"],
                     home_files={GIMP_PLUGINS: gimp_plugins,
                                 LAUNCH_JSON: server_relay.launch_json()}) as gui:
        dialog = gui.wait_for_window(DIALOG_TITLE, timeout=240)
        time.sleep(2)  # the dialog asked the server's health: nobody started one
        assert server_relay.servers == []
        gui.press(dialog, "alt+v")  # "Start ser_ver"
        _wait_for("a server start", lambda: server_relay.servers, gui=gui)
        connection = gui.ws.host_path("home") / ".config/nst-server/connection.json"
        _wait_for("the server's connection file", connection.exists, gui=gui)
        found = json.loads(connection.read_text())
        with urllib.request.urlopen(f"{found['url']}/v1/health", timeout=10) as response:
            assert response.status == 200
        gui.press(dialog, "alt+c")  # the dialog's _Cancel: the run ends, the server stays
        _wait_for("the end of the run", gui.ws.finished, timeout=60, gui=gui)
        gui.check_warnings()
        info = json.loads(gui.ws.outputs()["info.json"])
    assert info["status"] == "cancel", info
    assert info["layers_after"] == info["layers_before"]
    assert len(server_relay.servers) == 1 and server_relay.servers[0].poll() is None
