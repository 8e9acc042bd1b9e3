"""RankMe on matrices whose singular values are known by construction."""

from __future__ import annotations

import pytest
import torch

from selfsup.evaluate.rankme import rankme


def _rank_r(n: int, d: int, r: int, seed: int = 0) -> torch.Tensor:
    """U·diag(1,…,1)·Vᵀ with orthonormal U [n,r], V [d,r]: exactly r equal singular values."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, r, generator=g, dtype=torch.float64))
    matrix: torch.Tensor = u @ v.T
    return matrix


@pytest.mark.parametrize("r", [1, 3, 10, 32])
def test_equal_singular_values_give_rank(r: int) -> None:
    result = rankme(_rank_r(200, 32, r))
    assert result.value == pytest.approx(r, rel=1e-3)
    assert result.samples == 200


def test_collapsed_embeddings_give_one() -> None:
    row = torch.randn(1, 64)
    result = rankme(row.repeat(500, 1))
    assert result.value == pytest.approx(1.0, abs=1e-3)


def test_scale_invariant() -> None:
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(3))
    assert rankme(x * 1000).value == pytest.approx(rankme(x).value, rel=1e-6)


def test_subsample_is_seeded_and_recorded() -> None:
    x = torch.randn(1000, 16, generator=torch.Generator().manual_seed(4))
    a = rankme(x, max_samples=100, seed=7)
    b = rankme(x, max_samples=100, seed=7)
    assert a.samples == 100
    assert a.value == b.value
    # a random 100-row subset of isotropic data is still (nearly) full rank 16, below 16
    assert 10 < a.value < 16
