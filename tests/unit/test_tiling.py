"""Tiled evaluation: the tiles reproduce the untiled features, loss and gradient exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nst_engine import Settings
from nst_engine.losses import content_loss, gram_matrix, style_loss
from nst_engine.objective import Network, Objective, layout
from nst_engine.tiling import MIN_CORE, Span, Tile, alignment, halo, plan, smallest_crop, spans
from nst_engine.tiling import whole as whole_image

#: The layers a default run reads, content first.
DEFAULT_LAYERS = Settings().layers


def _image(size: int, seed: int) -> torch.Tensor:
    """Half smooth sky, half busy city: tiles that differ a lot."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    sky = np.stack([0.4 + 0.2 * y, 0.6 + 0.1 * y, 0.9 - 0.1 * x], axis=0)
    city = rng.random((3, size, size))
    image = np.where(y[None] < 0.5, sky, city).astype(np.float32)
    return torch.from_numpy(image)[None]


def _cores(length: int, core: int) -> list[Span]:
    """Spans with cores of ``core`` pixels, for tests that want a given tile size."""
    return spans(length, -(-length // core), 16, halo(DEFAULT_LAYERS))


def _targets(network: Network, settings: Settings, content: torch.Tensor,
             style: torch.Tensor) -> tuple[dict, dict]:
    """Whole-image content features and style Gram matrices, as a run makes them."""
    whole = whole_image(*content.shape[-2:])
    return (network.feature_maps(content, settings.content_layers, whole),
            network.gram_matrices(style, tuple(settings.style_layers), whole))


def _written_out_loss(features: dict, settings: Settings, content_targets: dict,
                      style_targets: dict) -> torch.Tensor:
    """The content and style loss written out over whole feature maps: the reference that
    autograd differentiates."""
    weights = {n: w / sum(settings.style_layers.values())
               for n, w in settings.style_layers.items()}
    return (content_loss(features, content_targets)
            + settings.style_weight * style_loss(features, style_targets, weights))


def test_halo_covers_the_receptive_field_of_the_deepest_layer():
    # conv5_1 sees 85 pixels to one side (70 to the other); 96 is the next multiple of 16.
    assert halo(DEFAULT_LAYERS) == 96 and alignment(DEFAULT_LAYERS) == 16
    assert halo(("conv1_1",)) == 1 and alignment(("conv1_1",)) == 1
    assert halo(("conv3_1",)) == 16 and alignment(("conv3_1",)) == 4  # 13 pixels, rounded up


def test_plan_uses_one_tile_when_it_fits_and_the_fewest_when_not():
    assert len(plan(300, 200, DEFAULT_LAYERS, 300 * 200)) == 1
    tiles = plan(1000, 1000, DEFAULT_LAYERS, 700 * 700)
    assert all(t.crop_pixels <= 700 * 700 for t in tiles)
    assert len(tiles) == 4  # 2x2: three per side would be needless, one does not fit
    covered = np.zeros((1000, 1000), dtype=int)
    for tile in tiles:
        covered[tile.rows.start:tile.rows.stop, tile.cols.start:tile.cols.stop] += 1
        assert tile.rows.start % 16 == 0 and tile.cols.start % 16 == 0
    assert (covered == 1).all()  # cores partition the image
    with pytest.raises(ValueError, match="at least"):
        plan(1000, 1000, DEFAULT_LAYERS, 100 * 100)


def test_shallow_layers_still_get_tiles_of_a_useful_size():
    """With conv1_1 alone the halo is 1 px; cores of 2 px would be absurd, and choosing among
    thousands of grids per side once took a 4000 px job's submission past a minute."""
    tiles = plan(3000, 4000, ("conv1_1",), 100 * 100)
    assert min(t.rows.stop - t.rows.start for t in tiles) >= MIN_CORE
    assert min(t.cols.stop - t.cols.start for t in tiles) >= MIN_CORE
    assert smallest_crop(3000, 4000, ("conv1_1",)) < (2 * MIN_CORE) ** 2
    with pytest.raises(ValueError, match="at least"):
        plan(3000, 4000, ("conv1_1",), 32 * 32)


def test_tiled_feature_maps_equal_the_untiled_ones(engine):
    image = _image(200, 0)
    network = Network(engine.model, "max", torch.float32, engine.device)
    whole = engine.model(layout(image, engine.device), DEFAULT_LAYERS)
    tiles = [Tile(r, c) for r in _cores(200, 64) for c in _cores(200, 96)]
    assert len(tiles) == 4 * 3
    maps = network.feature_maps(image, DEFAULT_LAYERS, tiles)
    for name in DEFAULT_LAYERS:
        assert maps[name].shape == whole[name].shape
        torch.testing.assert_close(maps[name], whole[name], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("tv_weight", [0.0, 0.5])
def test_tiled_gradient_equals_the_untiled_gradient(engine, tv_weight):
    """256x256 with 96 px tiles: the gradient of the tiled loss is the untiled gradient."""
    settings = Settings.from_preset("balanced", style_weight=10.0, tv_weight=tv_weight)
    network = Network(engine.model, "max", torch.float32, engine.device)
    content, style, image = _image(256, 1), _image(256, 2).flip(-1), _image(256, 3)
    whole = whole_image(256, 256)
    content_targets, style_targets = _targets(network, settings, content, style)

    # The reference: the loss written out over the whole image, differentiated by autograd.
    reference = image.clone().requires_grad_(True)
    features = engine.model(layout(reference, engine.device), DEFAULT_LAYERS)
    loss = _written_out_loss(features, settings, content_targets, style_targets)
    if tv_weight:
        dx = reference[..., :, 1:] - reference[..., :, :-1]
        dy = reference[..., 1:, :] - reference[..., :-1, :]
        loss = loss + tv_weight * (dx.square().mean() + dy.square().mean())
    loss.backward()

    tiles = [Tile(r, c) for r in _cores(256, 96) for c in _cores(256, 96)]
    assert len(tiles) == 9
    passes: list[tuple[int, int]] = []
    for layout_tiles, calls in ((whole, passes), (tiles, passes)):
        tiled = image.clone().requires_grad_(True)
        objective = Objective(network, settings, content_targets, style_targets, layout_tiles,
                              on_tile=lambda done, total, calls=calls: calls.append((done, total)))
        values = objective(tiled)
        assert values["total"] == pytest.approx(loss.item(), rel=1e-4)
        relative = (tiled.grad - reference.grad).norm() / reference.grad.norm()
        assert relative < 1e-3, f"{len(layout_tiles)} tiles: relative error {relative:.2e}"
    # One pass when untiled; two per tile otherwise (Gram matrices, then gradients).
    assert passes == [(1, 1)] + [(i, 18) for i in range(1, 19)]


def test_gram_matrices_of_tiles_add_up(engine):
    image = _image(160, 4)
    network = Network(engine.model, "avg", torch.float32, engine.device)
    tiles = [Tile(r, c) for r in _cores(160, 48) for c in _cores(160, 80)]
    grams = network.gram_matrices(image, ("conv1_1", "conv3_1", "conv5_1"), tiles)
    whole = engine.model(layout(image, engine.device), ("conv1_1", "conv3_1", "conv5_1"), "avg")
    for name, gram in grams.items():
        reference = gram_matrix(whole[name])
        # Float32 sums in another order: equal up to rounding, relative to the largest entry.
        assert (gram - reference).abs().max() < 1e-5 * reference.abs().max(), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("tiled", [False, True])
def test_reduced_precision_gradient_follows_fp32(engine, tiled, dtype):
    """bf16 (CPUs, recent GPUs) and fp16 (older GPUs) convolutions give nearly fp32's
    gradient at the shallow style layers, tiled or not. fp16 ends near 6e-8 and the gradients at
    the features are smaller, so they are scaled before backpropagation (``_fp16_scale``):
    unscaled, conv1_1's share of the gradient came out as zero and conv3_1's 58% wrong.
    (At conv5_1 both precisions are about 40-50% off here, from rounding the deep
    features themselves; the benchmark's results show what that costs.)"""
    settings = Settings.from_preset("balanced", content_weight=0.0, style_weight=10.0,
                                    style_layers={"conv1_1": 1.0, "conv3_1": 1.0})
    content, style, image = _image(160, 5), _image(160, 6).flip(-1), _image(160, 7)
    whole = whole_image(160, 160)
    tiles = [Tile(r, c) for r in _cores(160, 96) for c in _cores(160, 64)] if tiled else whole
    gradients = {}
    for precision in (torch.float32, dtype):
        network = Network(engine.model, "max", precision, engine.device)
        objective = Objective(network, settings, *_targets(network, settings, content, style),
                              whole if precision == torch.float32 else tiles)
        x = image.clone().requires_grad_(True)
        objective(x)
        gradients[precision] = x.grad
    reference, reduced = gradients[torch.float32], gradients[dtype]
    assert reduced.dtype == torch.float32
    relative = (reduced - reference).norm() / reference.norm()
    assert relative < 0.1, f"relative error {relative:.3f}"


@pytest.mark.parametrize("tiled", [False, True])
def test_bf16_gradient_is_autograds(engine, tiled):
    """The bf16 style gradient handed to autograd at the features (``_style_gradient``) is
    the gradient autograd gives for the loss written out with bf16 convolutions and fp32
    losses, up to bf16's rounding (measured: 0.3%; with R instead of R + R^T, 47%). The
    reference upcasts the features itself, so it does not share ``gram_sum``'s bf16 partial
    products with the objective."""
    settings = Settings.from_preset("balanced", style_weight=10.0)
    network = Network(engine.model, "max", torch.bfloat16, engine.device)
    content, style, image = _image(160, 5), _image(160, 6).flip(-1), _image(160, 7)
    whole = whole_image(160, 160)
    content_targets, style_targets = _targets(network, settings, content, style)

    reference = image.clone().requires_grad_(True)
    features = network.features(reference, DEFAULT_LAYERS)
    features = {name: f.float() for name, f in features.items()}  # fp32 Gram matrices
    _written_out_loss(features, settings, content_targets, style_targets).backward()

    tiles = [Tile(r, c) for r in _cores(160, 96) for c in _cores(160, 64)] if tiled else whole
    x = image.clone().requires_grad_(True)
    Objective(network, settings, content_targets, style_targets, tiles)(x)
    relative = (x.grad - reference.grad).norm() / reference.grad.norm()
    assert relative < 0.02, f"relative error {relative:.2e}"
