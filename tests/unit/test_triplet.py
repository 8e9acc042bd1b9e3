"""Triplet loss vs an explicit per-pair loop, zero when the margin holds, finite-difference
gradients; negatives never the pair itself nor a masked candidate, hard half = explicit argmax."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.losses import choose_negatives, triplet_loss


def _reference(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, m: float) -> float:
    total = 0.0
    for i in range(len(a)):
        ai, pi, ni = (v[i].tolist() for v in (a, p, n))

        def dist(x: list[float], y: list[float]) -> float:
            dot = sum(u * v for u, v in zip(x, y, strict=True))
            return 1.0 - dot / (math.sqrt(sum(u * u for u in x)) * math.sqrt(sum(v * v for v in y)))

        d_ap = dist(ai, pi)
        total += max(0.0, d_ap - dist(ai, ni) + m) + max(0.0, d_ap - dist(pi, ni) + m)
    return total


@pytest.mark.parametrize(("batch", "dim", "margin"), [(1, 2, 0.1), (5, 3, 0.5), (16, 8, 1.0)])
def test_matches_explicit_loop(batch: int, dim: int, margin: float) -> None:
    gen = torch.Generator().manual_seed(batch)
    a, p, n = (torch.randn(batch, dim, generator=gen, dtype=torch.float64) for _ in range(3))
    got = triplet_loss(a, p, n, margin).item()
    assert got == pytest.approx(_reference(a, p, n, margin), rel=1e-10, abs=1e-12)
    mean = triplet_loss(a, p, n, margin, reduction="mean").item()
    assert mean == pytest.approx(got / batch, rel=1e-10)


def test_zero_when_margin_holds_and_positive_when_violated() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = 2 * a  # same direction: D(a,p) = 0
    n = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # orthogonal: D = 1 > 0 + m
    assert triplet_loss(a, p, n, margin=0.9).item() == 0.0
    # margin 1.5 > 1: each pair violates both terms by 0.5
    assert triplet_loss(a, p, n, margin=1.5).item() == pytest.approx(2 * (0.5 + 0.5))


def test_gradient_matches_finite_differences() -> None:
    gen = torch.Generator().manual_seed(0)
    a, p, n = (
        torch.randn(4, 5, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3)
    )
    assert torch.autograd.gradcheck(lambda x, y, z: triplet_loss(x, y, z, 1.2), (a, p, n))


def test_rejects_bad_shapes_and_margin() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="shape"):
        triplet_loss(x, x, torch.randn(2, 4), 0.5)
    with pytest.raises(ValueError, match="margin"):
        triplet_loss(x, x, x, 0.0)


def test_negatives_avoid_self_and_masked_and_hard_half_is_argmax() -> None:
    gen = torch.Generator().manual_seed(1)
    a, p = torch.randn(10, 6, generator=gen), torch.randn(10, 6, generator=gen)
    same = torch.zeros(10, 10, dtype=torch.bool)
    same[0, 1] = same[2, 3] = True
    picks = choose_negatives(a, p, 0.5, torch.Generator().manual_seed(2), same)
    assert all(int(picks[i]) != i for i in range(10))
    assert int(picks[0]) != 1 and int(picks[2]) != 3
    # Explicit hardest candidate per pair.
    hardest = []
    for i in range(10):
        losses = {
            j: triplet_loss(a[i : i + 1], p[i : i + 1], p[j : j + 1], 0.5).item()
            for j in range(10)
            if j != i and not same[i, j]
        }
        hardest.append(max(losses, key=lambda j: losses[j]))
    agree = sum(int(picks[i]) == hardest[i] for i in range(10))
    assert agree >= 5  # the hard half (5 pairs) agrees; random picks may agree by chance
