"""The loss terms against hand computations."""

import torch

from nst_engine.losses import content_loss, gram_matrix, relative_mse, style_loss, total_variation


def test_gram_matrix_matches_hand_computation():
    # Two channels over a 1x2 image: F = [[1, 2], [3, 4]]; G = F F^T / (H*W).
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / 2
    assert torch.equal(gram_matrix(features), expected)


def test_gram_matrix_is_float32_for_reduced_precision_features():
    features = torch.ones(1, 3, 4, 4, dtype=torch.bfloat16)
    assert gram_matrix(features).dtype == torch.float32


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
