"""The ``nst`` command: a run writes its image; every bad input is one line and exit 1."""

import numpy as np
import pytest
import torch
from PIL import Image

from nst_engine.cli import main

TINY = ["--preset", "draft", "--size", "40", "--scales", "1", "--initial-iterations", "3"]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.png"
    style = tmp_path / "style.jpg"
    rgba = rng.integers(0, 256, (36, 40, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(content)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(style)
    return content, style


def test_stylize_writes_the_image_and_intermediate_steps(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out" / "result.png"
    steps = tmp_path / "steps"
    code = main(["stylize", str(content), str(style), "-o", str(out), *TINY, "--seed", "1",
                 "--save-every", "1", str(steps)])
    assert code == 0
    result, source = Image.open(out), Image.open(content)
    assert result.size == source.size and result.mode == "RGBA"
    assert result.getchannel("A").tobytes() == source.getchannel("A").tobytes()
    assert sorted(p.name for p in steps.iterdir()) == [
        "iteration_00001.png", "iteration_00002.png", "iteration_00003.png"]
    err = capsys.readouterr().err
    assert "3/3" in err and "ETA" in err and f"wrote {out}" in err


def test_precision_bf16_runs_the_convolutions_in_bf16(images, tmp_path):
    """The reduced-precision path a GPU takes by default, run on the CPU (issue 13)."""
    content, style = images
    out = tmp_path / "result.png"
    seen: set[torch.dtype] = set()

    def record(module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.Conv2d):
            seen.add(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        code = main(["stylize", str(content), str(style), "-o", str(out), *TINY,
                     "--precision", "bf16", "-q"])
    finally:
        hook.remove()
    assert code == 0 and seen == {torch.bfloat16}
    result = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    assert result.std() > 0  # a real image, not a blank left by non-finite values


def test_jpeg_output_drops_alpha(images, tmp_path):
    content, style = images
    out = tmp_path / "result.jpg"
    assert main(["stylize", str(content), str(style), "-o", str(out), *TINY, "-q"]) == 0
    assert Image.open(out).mode == "RGB"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--content-layers", "conv9_9"], "unknown layer 'conv9_9'"),
        (["--size", "5"], "'size': 5 is out of range"),
        (["--tolerance", "2"], "'tolerance': 2.0 is out of range"),
        (["--weights", "/nonexistent/vgg.pth"], "weights file '/nonexistent/vgg.pth': no such"),
        (["--style-layers", "conv1_1:heavy"], "bad weight in 'conv1_1:heavy'"),
        (["--save-every", "0", "dir"], "must be a positive integer"),
    ],
)
def test_bad_options_give_one_line(images, tmp_path, capsys, extra, message):
    content, style = images
    code = main(["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *TINY,
                 *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("nst: error:") and message in err[-1]
    assert not (tmp_path / "o.png").exists()


def test_unreadable_images(images, tmp_path, capsys):
    content, _ = images
    text = tmp_path / "style.png"
    text.write_text("hello")
    assert main(["stylize", str(content), str(text), "-o", str(tmp_path / "o.png"), *TINY]) == 1
    assert "style.png': cannot be read as an image" in capsys.readouterr().err
    assert main(["stylize", str(tmp_path / "missing.png"), str(content), "-o",
                 str(tmp_path / "o.png")]) == 1
    assert "missing.png': no such file" in capsys.readouterr().err


def test_output_needs_an_image_extension(images, tmp_path, capsys):
    content, style = images
    assert main(["stylize", str(content), str(style), "-o", str(tmp_path / "result")]) == 1
    assert "needs an image extension" in capsys.readouterr().err


def test_layers_and_presets(capsys):
    assert main(["layers"]) == 0
    assert "conv4_2" in capsys.readouterr().out.split()
    assert main(["presets"]) == 0
    assert "paper:" in capsys.readouterr().out
