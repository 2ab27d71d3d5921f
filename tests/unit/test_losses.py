"""The loss terms against hand computations."""

import pytest
import torch

from nst_engine.losses import (
    GRAM_CHUNK,
    content_loss,
    gram_matrix,
    gram_sum,
    relative_mse,
    style_loss,
    total_variation,
)


def test_gram_matrix_matches_hand_computation():
    # Two channels over a 1x2 image: F = [[1, 2], [3, 4]]; G = F F^T / (H*W).
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / 2
    assert torch.equal(gram_matrix(features), expected)


def test_gram_matrix_is_float32_for_reduced_precision_features():
    features = torch.ones(1, 3, 4, 4, dtype=torch.bfloat16)
    assert gram_matrix(features).dtype == torch.float32


@pytest.mark.parametrize("size", [(3, 5), (32, 32), (37, 41), (64, 64)],
                         ids=["less than a chunk", "one chunk", "chunk and rest", "chunks"])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format],
                         ids=["channels-last", "nchw"])
def test_bfloat16_gram_sums_in_chunks_agree_with_float32(size, layout):
    """Partial products in bfloat16 over GRAM_CHUNK positions, added in float32: each
    rounded once, so the sum stays within bfloat16's rounding (2**-8) of the float32 one."""
    assert GRAM_CHUNK == 1024  # the sizes above cover less than, exactly and over a chunk
    features = torch.relu(torch.randn(1, 8, *size, generator=torch.Generator().manual_seed(0)))
    features = features.bfloat16().contiguous(memory_format=layout)
    flat = features.float().flatten(2)[0]
    expected = flat @ flat.T
    result = gram_sum(features)
    assert result.dtype == torch.float32
    assert ((result - expected).abs() <= 2**-8 * expected.abs()).all()


def test_relative_mse_divides_by_the_target_energy():
    value, target = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])
    # mean((v - t)^2) = 1, mean(t^2) = 4
    assert abs(relative_mse(value, target).item() - 0.25) < 1e-6


def test_content_loss_averages_layers():
    features = {"a": torch.tensor([1.0, 3.0]), "b": torch.tensor([2.0, 2.0])}
    targets = {"a": torch.tensor([2.0, 2.0]), "b": torch.tensor([2.0, 2.0])}
    assert abs(content_loss(features, targets).item() - 0.125) < 1e-6


def test_style_loss_weights_layers():
    features = {"a": torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)}
    target = {"a": 2 * gram_matrix(features["a"])}
    g = gram_matrix(features["a"])
    expected = 0.5 * ((g - 2 * g) ** 2).mean() / ((2 * g) ** 2).mean()
    assert abs(style_loss(features, target, {"a": 0.5}).item() - expected.item()) < 1e-6


def test_total_variation_of_a_step_edge():
    image = torch.zeros(1, 1, 2, 2)
    image[..., 1] = 1.0  # right column bright: every horizontal neighbour differs by 1
    assert total_variation(image).item() == 1.0
    assert total_variation(torch.ones(1, 3, 5, 5)).item() == 0.0
