"""Real GIMP 3.0 (headless, in the Debian 13 chroot) with no server running: the plug-in
starts it, reuses it the next time, and shows a live preview layer while a job runs.

The plug-in is installed as `nst-server install-plugin gimp` installs it; its HOME holds a
launch.json, as install-plugin writes one, and no connection.json. The chroot's Python cannot
run the host's virtual environment, so launch.json's command is ``inside/nst_server_relay.py``,
which has the host start the real ``python -m nst_server serve`` (``server_relay.py``);
everything the plug-in does (finding launch.json, spawning the command detached, waiting for
``/v1/health``, the preview layer) is its real code.

A batch script blocks while GIMP runs a procedure, so it cannot look at the image meanwhile.
The second run therefore calls the installed plug-in's ``stylize`` in the script's own GIMP
process, with the preview layer's ``show`` and ``remove`` wrapped to record the image's layers
right after each, as the Layers dialog shows them.
"""

from __future__ import annotations

import json
import uuid

from harness import GIMP_PLUGINS, home_path, run_gimp
from sample_images import job_inputs
from server_relay import LAUNCH_JSON

# Enough iterations that the job outlives a few status polls, so previews are asked for; a
# working size under the 40 px layer's, so each preview must be scaled up to cover it.
SLOW_DRAFT = {"preset": "draft", "scales": 1, "initial_iterations": 60, "size": 32}

# Runs inside GIMP: the filter's procedure once, then its stylize() with the preview watched.
SCRIPT = """\
import json
import os
import sys

from gi.repository import Gimp, Gio

IN, OUT = os.environ["NST_IN"], os.environ["NST_OUT"]
plan = json.load(open(os.path.join(IN, "plan.json")))
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                       Gio.File.new_for_path(os.path.join(IN, "content.png")))
source = image.get_layers()[0]
style = os.path.join(IN, "style.png")


def names():
    return [layer.get_name() for layer in image.get_layers()]


def frame_box():  # where the preview frame lies, if there is one
    return [[layer.get_width(), layer.get_height(), *layer.get_offsets()[1:]]
            for layer in image.get_layers() if layer.get_name() == "Preview: style"]


procedure = Gimp.get_pdb().lookup_procedure("python-fu-neural-style-transfer")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [source])
config.set_property("style", Gio.File.new_for_path(style))
config.set_property("extra-settings", json.dumps(plan["settings"]))
result = procedure.run(config)
first = {"status": result.index(0).value_nick, "source": source.get_name(), "layers": names()}
if first["status"] != "success":
    first["error"] = str(result.index(1))

sys.path.insert(0, os.path.join(os.environ["HOME"], plan["plug_in"]))
from nst_gimp import preview
from nst_gimp.arguments import Choices
from nst_gimp.stylize import stylize

# What GIMP's Cancel button leaves (it kills the plug-in): a frame of a killed run's preview.
from nst_gimp.layers import read_source
left_over = preview.PreviewLayer(read_source(image, [source], False), "Preview: killed")
left_over.show(open(style, "rb").read())
left_over_seen = names()

seen = []
for method in ("show", "remove"):
    def watched(self, *args, _original=getattr(preview.PreviewLayer, method), _name=method):
        _original(self, *args)
        seen.append([_name, names(), frame_box()])
    setattr(preview.PreviewLayer, method, watched)
layer = stylize(image, [source], Choices(style, plan["settings"], False))
second = {"layer": layer.get_name(), "layers": names(), "seen": seen,
          "left_over": left_over_seen, "source_box": [source.get_width(), source.get_height(),
                                                      *source.get_offsets()[1:]]}
with open(os.path.join(OUT, "runs.json"), "w") as handle:
    json.dump([first, second], handle)
"""


def test_first_stylize_starts_the_server_the_next_reuses_it_with_a_live_preview(
        editor_chroot, gimp_plugins, server_relay):
    result = run_gimp(
        editor_chroot,
        SCRIPT,
        inputs=job_inputs({"settings": SLOW_DRAFT, "plug_in": home_path(
            editor_chroot, f"{GIMP_PLUGINS}/neural-style-transfer")}),
        home_files={GIMP_PLUGINS: gimp_plugins, LAUNCH_JSON: server_relay.launch_json()},
        timeout=300,
    )
    first, second = json.loads(result.files["runs.json"])
    assert first["status"] == "success", first
    assert first["layers"] == ["style (style transfer)", first["source"]]
    # Started once, by the first run, and still running once that plug-in process ended.
    assert len(server_relay.servers) == 1, server_relay.log.read_text()
    assert server_relay.servers[0].poll() is None, "the server stopped with the plug-in"
    # The second run found it answering, and its result came back.
    assert second["layer"].startswith("style (style transfer)")  # GIMP adds " #1"
    # Just above its source, so below the first run's result.
    assert second["layers"] == ["style (style transfer)", second["layer"], first["source"]], second
    # While the job ran, its preview layer lay just above the source; it was gone before
    # the result was added. The left-over frame was gone before the first preview.
    # The frame a killed run left was removed first (only it: not the first run's result).
    assert second["left_over"] == ["style (style transfer)", "Preview: killed", first["source"]]
    with_preview = ["style (style transfer)", "Preview: style", first["source"]]
    shown = [(layers, box) for step, layers, box in second["seen"] if step == "show"]
    assert shown and all(layers == with_preview for layers, _ in shown), second["seen"]
    # Each frame (a preview of at most 32 px) covers the source exactly.
    assert all(box == [second["source_box"]] for _, box in shown), second
    assert second["seen"][-1] == ["remove", first["layers"], []], second["seen"]


FAIL_SCRIPT = """\
import json
import os

from gi.repository import Gimp, Gio

IN, OUT = os.environ["NST_IN"], os.environ["NST_OUT"]
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                       Gio.File.new_for_path(os.path.join(IN, "content.png")))
procedure = Gimp.get_pdb().lookup_procedure("python-fu-neural-style-transfer")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", image.get_layers())
config.set_property("style", Gio.File.new_for_path(os.path.join(IN, "style.png")))
result = procedure.run(config)
with open(os.path.join(OUT, "run.json"), "w") as handle:
    json.dump({"status": result.index(0).value_nick, "error": str(result.index(1)),
               "layers": [layer.get_name() for layer in image.get_layers()]}, handle)
"""


def test_a_server_that_fails_to_start_shows_its_log_and_the_command(editor_chroot,
                                                                    gimp_plugins):
    """The start fails (here: a command that only prints and exits 1): the run ends with the
    log's last lines and the command, and the image is left as it was."""
    crash = ["/usr/bin/python3", "-c", "print('weights not found: pass --weights'); exit(1)"]
    log = f"/tmp/nst-failed-start-{uuid.uuid4().hex}.log"
    launch = {"version": 1, "command": crash, "log": log}
    try:
        result = run_gimp(
            editor_chroot,
            FAIL_SCRIPT,
            inputs=job_inputs({}),
            home_files={GIMP_PLUGINS: gimp_plugins, LAUNCH_JSON: json.dumps(launch)},
            timeout=300,
        )
    finally:
        (editor_chroot / log.lstrip("/")).unlink(missing_ok=True)
    run = json.loads(result.files["run.json"])
    assert run["status"] == "execution-error", run
    assert "stopped (exit status 1)" in run["error"], run["error"]
    assert "weights not found: pass --weights" in run["error"]
    assert "/usr/bin/python3 -c" in run["error"]  # what to run by hand
    assert len(run["layers"]) == 1  # no result, and no preview left behind
