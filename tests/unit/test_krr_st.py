"""KRR-ST pieces against independent references: the ridge closed form, a shrinking outer loss,
and the pool's step counter (re-initialised *and* reset at T, unlike the reference code)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfsup.config import DistillParams, PretrainParams
from selfsup.distill.krr import krr_loss, krr_predict
from selfsup.distill.pool import ModelPool, PoolModel
from selfsup.distill.stage import outer_loss
from selfsup.models import build_encoder

TINY_CONVNET = PretrainParams(encoder="convnet", convnet_width=4)


def _primal_ridge(
    f_s: torch.Tensor, f_t: torch.Tensor, y_s: torch.Tensor, ridge: float
) -> torch.Tensor:
    """Ridge regression in weight space: W = (ΦᵀΦ + λI)⁻¹ ΦᵀY, prediction Φ_t W, with
    Φ = [f, 1] and λ = ridge·tr(ΦΦᵀ) (= ridge·‖Φ‖²_F), written out independently."""
    phi_s = torch.cat([f_s, torch.ones(len(f_s), 1, dtype=f_s.dtype)], 1).double()
    phi_t = torch.cat([f_t, torch.ones(len(f_t), 1, dtype=f_t.dtype)], 1).double()
    lam = ridge * float((phi_s**2).sum())
    gram = phi_s.T @ phi_s + lam * torch.eye(phi_s.shape[1], dtype=torch.float64)
    weights = torch.linalg.inv(gram) @ phi_s.T @ y_s.double()
    return phi_t @ weights


@pytest.mark.parametrize(("m", "width"), [(12, 5), (6, 20)])  # fewer and more features than m
@pytest.mark.parametrize("ridge", [1e-3, 1e-1])
def test_krr_dual_equals_primal_ridge_solution(m: int, width: int, ridge: float) -> None:
    gen = torch.Generator().manual_seed(m + width)
    f_s = torch.randn(m, width, generator=gen, dtype=torch.float64)
    f_t = torch.randn(9, width, generator=gen, dtype=torch.float64)
    y_s = torch.randn(m, 4, generator=gen, dtype=torch.float64)
    dual = krr_predict(f_s, f_t, y_s, ridge)
    torch.testing.assert_close(dual, _primal_ridge(f_s, f_t, y_s, ridge), rtol=1e-7, atol=1e-9)


def test_krr_with_vanishing_ridge_interpolates_the_synthetic_set() -> None:
    """Queried at its own (independent) training points, an almost unregularised KRR with more
    features than points reproduces the targets."""
    gen = torch.Generator().manual_seed(1)
    f_s = torch.randn(5, 30, generator=gen, dtype=torch.float64)
    y_s = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(krr_predict(f_s, f_s, y_s, 1e-12), y_s, rtol=0, atol=1e-6)


def test_loss_is_mse_of_the_prediction() -> None:
    gen = torch.Generator().manual_seed(2)
    f_s, f_t = torch.randn(6, 4, generator=gen), torch.randn(7, 4, generator=gen)
    y_s, y_t = torch.randn(6, 3, generator=gen), torch.randn(7, 3, generator=gen)
    expected = ((krr_predict(f_s, f_t, y_s, 1e-2) - y_t) ** 2).mean()
    torch.testing.assert_close(krr_loss(f_s, f_t, y_s, y_t, 1e-2), expected)


def _factory(target_dim: int, calls: list[int] | None = None) -> PoolModel:
    if calls is not None:
        calls.append(1)
    return PoolModel(build_encoder(TINY_CONVNET), target_dim)


def _pool(size: int, max_steps: int, calls: list[int] | None = None) -> ModelPool:
    return ModelPool(
        lambda: _factory(3, calls),
        size,
        max_steps,
        1e-2,
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    )


def test_pool_reinitialises_and_resets_the_counter_every_t_steps() -> None:
    calls: list[int] = []
    pool = _pool(1, max_steps=3, calls=calls)
    images, targets = torch.rand(4, 3, 8, 8), torch.randn(4, 3)
    counters, weights = [], []
    for _ in range(9):
        before = pool.members[0].model
        pool.step(0, images, targets)
        counters.append(pool.members[0].steps)
        weights.append(pool.members[0].model is not before)
    # Reset at 3, 6, 9 only: with the reference code's missing reset the counter would stay ≥ T
    # and the model would be re-initialised at every step from the third on (7 times).
    assert counters == [1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert weights == [False, False, True] * 3
    assert pool.resets == 3 and len(calls) == 1 + 3


def test_pool_step_trains_the_member_and_warm_up_stays_below_t() -> None:
    pool = _pool(3, max_steps=40)
    images, targets = torch.rand(8, 3, 8, 8), torch.randn(8, 3)
    first = pool.step(0, images, targets)
    for _ in range(25):
        last = pool.step(0, images, targets)
    assert last < first
    pool.warm_up(images, targets)
    assert all(0 <= member.steps < 40 for member in pool.members)


def test_outer_loss_decreases_and_only_moves_images_and_targets() -> None:
    """A tiny problem, one fixed pool model: 40 Adam steps on (X_s, Y_s) shrink the KRR loss;
    the gradient reaches X_s and Y_s and not the pool model's weights."""
    torch.manual_seed(0)
    real = torch.rand(48, 3, 8, 8)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    with torch.no_grad():
        real_targets = teacher(real)
    pool = _pool(1, max_steps=1000)
    synthetic = real[:6].clone().requires_grad_(True)
    targets = real_targets[:6].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([synthetic, targets], lr=2e-2)
    losses = []
    for _ in range(40):
        loss = outer_loss(pool, 0, synthetic, targets, real, real_targets, 1e-6)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        assert synthetic.grad is not None and float(synthetic.grad.abs().sum()) > 0
        assert targets.grad is not None and float(targets.grad.abs().sum()) > 0
        assert all(w.grad is None for w in pool.members[0].model.parameters())
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_real_subset_smaller_than_a_batch_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="real_batch_size"):
        DistillParams(real_images=8, real_batch_size=16)
