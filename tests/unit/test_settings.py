"""Settings are validated in one place, with the setting's name and range in the error."""

import json
import re
from pathlib import Path

import pytest

from nst_engine import PRESETS, Settings, SettingsError
from nst_engine.settings import PLATEAU_WINDOW


def test_defaults_are_the_balanced_preset():
    assert Settings() == Settings.from_preset("balanced")


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_through_json(name):
    settings = Settings.from_preset(name)
    assert Settings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_paper_preset_follows_the_reference_paper():
    paper = Settings.from_preset("paper")
    assert paper.content_layers == ("conv4_2",)
    assert set(paper.style_layers) == {"conv1_1", "conv2_1", "conv3_1"}
    assert (paper.size, paper.scales, paper.optimizer, paper.style_weight) == (
        400, 1, "lbfgs", 10.0)


@pytest.mark.parametrize("name", [name for name in PRESETS if name != "paper"])
def test_presets_read_the_relus_as_gatys_et_al_ran_them(name):
    """Caffe's ReLUs work in place, so the paper's conv4_2 is the ReLU's output; the
    convolutions' raw outputs made the finest scale slow to bring the content back."""
    settings = Settings.from_preset(name)
    assert settings.content_layers == ("relu4_2",)
    assert dict(settings.style_layers) == {f"relu{block}_1": 1.0 for block in range(1, 6)}


def test_draft_weights_style_less_to_bring_the_content_back_in_its_few_iterations():
    """At 7, draft's short finest scale (50 + 20) ended further from the content than the
    pinned 80 + 40 on two pairs of three (issue 13); the other presets have iterations
    enough for 7."""
    assert Settings.from_preset("draft").style_weight == 5.0
    assert {Settings.from_preset(name).style_weight
            for name in ("balanced", "high", "full")} == {Settings().style_weight} == {7.0}


def test_overrides_apply_on_top_of_the_preset():
    settings = Settings.from_dict({"preset": "high", "iterations": 7})
    assert settings.iterations == 7 and settings.size == PRESETS["high"]["size"]
    assert settings.total_iterations() == settings.initial_iterations + 2 * 7


@pytest.mark.parametrize(
    ("values", "setting", "message"),
    [
        ({"size": 10}, "size", r"out of range \[32, 8192\]"),
        ({"style_weight": -1}, "style_weight", "out of range"),
        ({"iterations": 0}, "iterations", "out of range"),
        ({"iterations": "many"}, "iterations", "must be an integer"),
        ({"content_weight": float("nan")}, "content_weight", "finite"),
        ({"optimizer": "sgd"}, "optimizer", "not one of lbfgs, adam"),
        ({"colour": 1}, "colour", "unknown setting"),
        ({"preset": "ultra"}, "preset", "unknown preset"),
        ({"content_layers": ["conv9_9"]}, "content_layers", "unknown layer 'conv9_9'"),
        ({"style_layers": {"conv1_1": -2}}, "style_layers", "weight of 'conv1_1'"),
        ({"style_layers": {}}, "style_layers", "at least one"),
        ({"style_layers": ["conv1_1"]}, "style_layers", "object of layer names and weights"),
        ({"style_layers": 5}, "style_layers", "not int"),
        ({"content_layers": 5}, "content_layers", "list of layer names"),
        ({"content_layers": "conv4_2"}, "content_layers", "not str"),
        ({"init": "image"}, "init_image", "required"),
        ({"preserve_colors": "yes"}, "preserve_colors", "true or false"),
        ({"size": 64, "scales": 3}, "scales", "smaller than 32"),
    ],
)
def test_bad_values_name_the_setting(values, setting, message):
    with pytest.raises(SettingsError, match=message) as error:
        Settings.from_dict(values)
    assert error.value.setting == setting
    assert f"'{setting}'" in str(error.value)


def test_the_readme_gives_the_presets_figures_as_they_are():
    """The README once said draft runs 160 iterations in all; it runs 120 (issue 17)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("**Presets.**"):].split("\n\n")[0]
    figures = {name: tuple(map(int, numbers)) for name, *numbers in re.findall(
        r"`(\w+)` \((\d+) px,\s+(\d+) scales,\s+(\d+)", paragraph)}
    assert figures.keys() == {"draft", "balanced", "high"}, paragraph
    for name, (size, scales, iterations) in figures.items():
        preset = Settings.from_preset(name)
        assert (size, scales, iterations) == (preset.size, preset.scales,
                                              preset.total_iterations()), name
    stop = re.search(r"less than (\d+)% over (\d+)\s+iterations", paragraph)
    assert stop, paragraph
    assert int(stop.group(1)) / 100 == Settings.from_preset("balanced").tolerance
    assert int(stop.group(2)) == PLATEAU_WINDOW
    assert re.search(r"`high` \([^)]*\s+at\s+most,\s+stopping\s+the\s+same\s+way\)", paragraph)
    assert {Settings.from_preset(name).tolerance for name in ("balanced", "high", "full")} == {
        Settings.from_preset("balanced").tolerance}
    full = re.search(r"`full` \(`high`, then .*? (\d+) iterations each\)", paragraph, re.S)
    assert full and int(full.group(1)) == Settings.from_preset("full").full_iterations
    relus = re.search(r"All but `paper` read .*? at style weight (\d+)", paragraph, re.S)
    assert relus and float(relus.group(1)) == Settings().style_weight
    draft = re.search(r"`draft` weights style (\d+)", paragraph)
    assert draft and float(draft.group(1)) == Settings.from_preset("draft").style_weight
    assert re.search(r"`paper`.*?style weight (\d+)\.", paragraph, re.S).group(1) == "10"
