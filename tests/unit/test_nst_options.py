"""The dialogs' shared choices (plugins/nst_options.py): the same slider means the same
settings in Krita and in GIMP, and the dialogs' defaults are the engine's own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

import nst_options

from nst_engine import PRESETS, Settings


def test_the_dialogs_offer_the_engines_presets_and_default():
    assert tuple(PRESETS) == nst_options.PRESETS
    assert nst_options.DEFAULT_PRESET == Settings().preset == Settings.from_preset().preset
    assert nst_options.engine_settings()["preset"] == nst_options.DEFAULT_PRESET


@pytest.mark.parametrize("preset", list(PRESETS))
def test_sliders_at_the_middle_give_the_engines_own_weights(preset):
    """50/50 is "the engine's default balance" in both dialogs, for every preset."""
    engine = Settings.from_preset(preset)
    chosen = Settings.from_dict(nst_options.engine_settings(preset))
    assert (chosen.style_weight, chosen.content_weight) == (
        engine.style_weight, engine.content_weight)
    assert chosen.replace(preserve_colors=engine.preserve_colors) == engine


@pytest.mark.parametrize("value", [0, 100])
def test_every_slider_position_is_a_setting_the_engine_accepts(value):
    for preset in PRESETS:
        Settings.from_dict(nst_options.engine_settings(preset, value, value, True, 1))


def test_sliders_are_logarithmic_around_the_engine_default():
    assert nst_options.slider_factor(50) == 1.0
    assert nst_options.slider_factor(75) == pytest.approx(10.0)
    assert nst_options.slider_factor(0) == pytest.approx(0.01)
    assert nst_options.slider_factor(150) == nst_options.slider_factor(100)


def test_dialog_choices_become_server_settings():
    settings = nst_options.engine_settings("draft", 75, 25, preserve_colors=True, seed=7)
    assert settings == {"preset": "draft", "style_weight": 50.0, "content_weight": 0.1,
                        "preserve_colors": True, "seed": 7}
    assert nst_options.engine_settings()["style_weight"] == nst_options.STYLE_WEIGHTS["balanced"]
    assert nst_options.engine_settings("paper", 75)["style_weight"] == 100.0
    assert "seed" not in nst_options.engine_settings(seed=0)  # 0 is the dialogs' "random"
    assert "seed" not in nst_options.engine_settings(seed=None)
    with pytest.raises(ValueError, match="preset"):
        nst_options.engine_settings("ultra")


def test_one_server_status_line_for_both_dialogs():
    assert nst_options.describe_health({"device": "cuda:0", "queue_length": 2}) == (
        "Server connected: cuda:0, 2 jobs queued"
    )
    assert nst_options.describe_health({"device": "cpu", "queue_length": 1}) == (
        "Server connected: cpu, 1 job queued"
    )
    assert nst_options.describe_health({"device": "cpu", "queue_length": 0}) == (
        "Server connected: cpu, queue empty"
    )


def test_layer_name_and_progress_text():
    assert nst_options.layer_name("/art/Starry Night.jpg") == "Starry Night (style transfer)"
    # The Layers docker cuts long names at the end: the word comes first (issue 17).
    assert nst_options.preview_layer_name("/art/Starry Night.jpg") == "Preview: Starry Night"
    assert nst_options.format_eta(None) == "estimating time left..."
    assert nst_options.format_eta(9) == "about 9 s left"
    assert nst_options.describe_progress({"state": "queued", "queue_position": 2}) == (
        "Waiting in the server's queue (position 2)..."
    )
    running = {"state": "running", "iteration": 3, "total": 10, "eta": 75.4}
    assert nst_options.describe_progress(running) == "Iteration 3 of 10, about 1 min 15 s left"
    tiled = {**running, "tile": 4, "tiles": 8}  # four passes over tiles done, of eight
    assert nst_options.describe_progress(tiled) == (
        "Iteration 3 of 10 (part 5 of 8), about 1 min 15 s left")


def test_every_preset_has_a_label_and_full_resolution_is_offered():
    assert set(nst_options.PRESET_LABELS) == set(nst_options.PRESETS)
    assert "Full resolution" in nst_options.PRESET_LABELS["full"]
    assert Settings.from_dict(nst_options.engine_settings("full")).full_resolution
