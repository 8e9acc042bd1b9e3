"""The linear probe on data a linear classifier must solve."""

from __future__ import annotations

import torch

from selfsup.evaluate.linear_probe import fit_linear_probe


def _blobs(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[6.0, 0, 0, 0], [0, 6.0, 0, 0], [0, 0, 6.0, 0], [-6.0, -6.0, 0, 0]])
    labels = torch.arange(4).repeat_interleave(n_per_class)
    features = centres[labels] + torch.randn(len(labels), 4, generator=g)
    return features * 50 + 100, labels  # off-centre, large scale: standardisation matters


def test_separable_blobs_are_learned() -> None:
    x_train, y_train = _blobs(50, 0)
    x_test, y_test = _blobs(50, 1)
    probe = fit_linear_probe(x_train, y_train, epochs=50, weight_decay=1e-4)
    accuracy = float((probe.predict(x_test) == y_test).float().mean())
    assert accuracy >= 0.95


def test_probabilities_sum_to_one() -> None:
    x, y = _blobs(20, 2)
    probe = fit_linear_probe(x, y, num_classes=6, epochs=20)
    proba = probe.predict_proba(x)
    assert proba.shape == (80, 6)
    assert torch.allclose(proba.sum(dim=1), torch.ones(80, dtype=proba.dtype), atol=1e-9)
    assert bool((proba >= 0).all())


def test_deterministic() -> None:
    x, y = _blobs(20, 3)
    a = fit_linear_probe(x, y, epochs=15)
    b = fit_linear_probe(x, y, epochs=15)
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(a.bias, b.bias)
