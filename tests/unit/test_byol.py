"""BYOL's pieces against the paper (Grill et al. 2020, eqs. 2 and 4, and its τ schedule): the
normalised-MSE loss against an explicit float64 loop, the momentum schedule's closed-form
values, and the EMA update against the formula computed parameter by parameter."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from selfsup.train.methods.byol import byol_loss, ema_update, target_momentum


def _loop_loss(p: torch.Tensor, z: torch.Tensor) -> float:
    """Mean over rows of ‖p/‖p‖ − z/‖z‖‖², one row at a time in float64."""
    total = 0.0
    for i in range(len(p)):
        pi, zi = p[i].double(), z[i].double()
        diff = pi / pi.norm() - zi / zi.norm()
        total += float((diff * diff).sum())
    return total / len(p)


def test_loss_is_the_symmetrised_normalised_mse_of_the_paper() -> None:
    g = torch.Generator().manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(7, 5, generator=g) * 3 for _ in range(4))
    expected = _loop_loss(p1, z2) + _loop_loss(p2, z1)
    assert float(byol_loss(p1, p2, z1, z2)) == pytest.approx(expected, rel=1e-5)
    # Scale-free in both arguments, 0 when the prediction points at the target, 8 at its antipode.
    assert float(byol_loss(2 * p1, p2, z1, 5 * z2)) == pytest.approx(expected, rel=1e-5)
    assert float(byol_loss(z2, z1, z1, z2)) == pytest.approx(0.0, abs=1e-6)
    assert float(byol_loss(-z2, -z1, z1, z2)) == pytest.approx(8.0, rel=1e-6)


def test_loss_sends_no_gradient_into_the_targets() -> None:
    g = torch.Generator().manual_seed(1)
    p1, p2, z1, z2 = (torch.randn(4, 3, generator=g).requires_grad_() for _ in range(4))
    byol_loss(p1, p2, z1, z2).backward()  # type: ignore[no-untyped-call]
    assert p1.grad is not None and p2.grad is not None
    assert z1.grad is None and z2.grad is None


def test_momentum_follows_the_cosine_schedule() -> None:
    base, total = 0.996, 1000
    assert target_momentum(0, total, base) == pytest.approx(base)
    assert target_momentum(total, total, base) == pytest.approx(1.0)
    assert target_momentum(total // 2, total, base) == pytest.approx((1 + base) / 2)
    k = 123  # the formula itself at an arbitrary step
    closed = 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2
    assert target_momentum(k, total, base) == pytest.approx(closed, rel=1e-12)
    values = [target_momentum(s, total, base) for s in range(total + 1)]
    assert all(a <= b for a, b in itertools.pairwise(values)), "never decreases"


def test_ema_update_is_the_formula_for_every_parameter() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    target = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    before = [t.detach().double().clone() for t in target.parameters()]
    tau = 0.9
    ema_update(target, online, tau)
    for old, new, theta in zip(before, target.parameters(), online.parameters(), strict=True):
        expected = tau * old + (1 - tau) * theta.detach().double()
        torch.testing.assert_close(new.detach().double(), expected, rtol=1e-6, atol=1e-7)
    kept = [t.detach().clone() for t in target.parameters()]
    ema_update(target, online, 1.0)  # τ = 1 leaves the target exactly where it is
    assert all(torch.equal(a, b) for a, b in zip(kept, target.parameters(), strict=True))
    ema_update(target, online, 0.0)  # τ = 0 copies the online network
    pairs = zip(target.parameters(), online.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
