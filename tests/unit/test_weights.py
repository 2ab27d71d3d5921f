"""Every weights layout loads into the same module; every bad file gets one clear error."""

import pytest
import torch

from nst_engine import WeightsError
from nst_engine.layers import CONV_NAMES, TORCHVISION_INDEX
from nst_engine.vgg import VGG19
from nst_engine.weights import CAFFE, IMAGENET, default_weights_path, load_weights


@pytest.fixture(scope="module")
def original():
    """The real default file, read once."""
    return load_weights("default")


def test_default_weights_are_the_original_caffe_model(original):
    assert default_weights_path().name == "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    assert original.preprocessing == CAFFE
    assert set(original.convs) == set(CONV_NAMES)
    assert original.convs["conv5_4"][0].shape == (512, 512, 3, 3)


def test_layouts_load_into_the_same_module(original, tmp_path):
    torchvision = {}
    ours = {"preprocessing": "caffe"}
    for name, (weight, bias) in original.convs.items():
        index = TORCHVISION_INDEX[name]
        torchvision |= {f"features.{index}.weight": weight, f"features.{index}.bias": bias}
        ours |= {f"{name}.weight": weight, f"{name}.bias": bias}
    torchvision["classifier.0.weight"] = torch.zeros(2, 2)  # a full checkpoint's extra keys
    torch.save(torchvision, tmp_path / "tv.pth")
    torch.save(ours, tmp_path / "ours.pth")

    from_tv = load_weights(tmp_path / "tv.pth")
    from_ours = load_weights(tmp_path / "ours.pth")
    assert from_tv.preprocessing == IMAGENET  # torchvision's layout means its normalisation
    assert from_ours.preprocessing == CAFFE
    image = torch.rand(1, 3, 32, 32)
    reference = VGG19(original)(image, ["relu3_1"])["relu3_1"]
    same = VGG19(from_ours)(image, ["relu3_1"])["relu3_1"]
    assert torch.equal(reference, same)
    for name in CONV_NAMES:
        assert torch.equal(from_tv.convs[name][0], original.convs[name][0])


def test_model_is_frozen_and_stops_at_the_deepest_layer(original):
    model = VGG19(original)
    assert not any(p.requires_grad for p in model.parameters())
    features = model(torch.rand(1, 3, 32, 32), ["conv1_1", "relu2_1"])
    assert set(features) == {"conv1_1", "relu2_1"}
    assert features["relu2_1"].shape == (1, 128, 16, 16)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match=r"nothere.pth'.*no such file"):
        load_weights(tmp_path / "nothere.pth")


def test_truncated_file(original, tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({f"{n}.weight": w for n, (w, _) in original.convs.items()}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsError, match=r"cut.pth'.*truncated or damaged"):
        load_weights(path)


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(WeightsError, match=r"photo.png"):
        load_weights(path)


def test_wrong_keys(tmp_path):
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"not VGG-19 weights.*found fc.weight"):
        load_weights(tmp_path / "other.pth")


def test_missing_layer(original, tmp_path):
    state = {f"{n}.{k}": t for n, (w, b) in original.convs.items() for k, t in
             (("weight", w), ("bias", b)) if n != "conv5_4"}
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(WeightsError, match=r"missing conv5_4.weight"):
        load_weights(tmp_path / "short.pth")


def test_mismatched_shape(original, tmp_path):
    state = {f"{n}.{k}": t for n, (w, b) in original.convs.items() for k, t in
             (("weight", w), ("bias", b))}
    state["conv2_1.weight"] = torch.zeros(128, 64, 5, 5)
    torch.save(state, tmp_path / "vgg16ish.pth")
    with pytest.raises(WeightsError, match=r"conv2_1 weight has shape \(128, 64, 5, 5\)"):
        load_weights(tmp_path / "vgg16ish.pth")


def test_torchvision_weights_are_never_downloaded_unasked(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError, match="--download"):
        load_weights("torchvision")
