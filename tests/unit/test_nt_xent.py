"""NT-Xent against an explicit per-anchor loop and its closed-form properties."""

import math

import pytest
import torch

from selfsup.losses import nt_xent


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """Textbook definition, one anchor at a time, in float64 with plain Python sums."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        positive = (i + n) % n2
        numerator = math.exp(float(z[i] @ z[positive]) / tau)
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(numerator / denominator)
    return total / n2


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_matches_explicit_loop(n: int, tau: float) -> None:
    gen = torch.Generator().manual_seed(n * 100 + int(tau * 10))
    z1, z2 = torch.randn(n, 8, generator=gen), torch.randn(n, 8, generator=gen)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(reference_nt_xent(z1, z2, tau), rel=1e-5)


@pytest.mark.parametrize("n", [2, 7, 64])
def test_identical_embeddings_give_log_2n_minus_1(n: int) -> None:
    z = torch.ones(n, 4)
    assert nt_xent(z, z, 0.3).item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)


def test_invariant_to_rescaling() -> None:
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    assert nt_xent(z1 * 1e3, z2 * 1e-2, 0.2).item() == pytest.approx(
        nt_xent(z1, z2, 0.2).item(), rel=1e-5
    )


def test_gradients_finite_at_tiny_temperature() -> None:
    z1 = torch.randn(32, 16, requires_grad=True)
    z2 = torch.randn(32, 16, requires_grad=True)
    loss = nt_xent(z1, z2, 0.01)
    loss.backward()
    assert torch.isfinite(loss)
    assert z1.grad is not None and torch.isfinite(z1.grad).all()
    assert z2.grad is not None and torch.isfinite(z2.grad).all()


def test_aligned_views_have_lower_loss_than_random() -> None:
    z = torch.randn(16, 32)
    assert nt_xent(z, z + 0.01 * torch.randn_like(z), 0.2) < nt_xent(z, torch.randn_like(z), 0.2)


def test_rejects_bad_shapes_and_temperature() -> None:
    with pytest.raises(ValueError, match="must both be"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.0)


def test_top_k_matches_a_loop_over_anchors_and_stops_the_gradient() -> None:
    """top_k: -log(e^{s+}/(e^{s+} + Σ_{k hardest} e^{s-})) per anchor, non-anchor side detached."""
    generator = torch.Generator().manual_seed(5)
    z1 = torch.randn(6, 4, generator=generator, requires_grad=True)
    z2 = torch.randn(6, 4, generator=generator, requires_grad=True)
    k, tau = 3, 0.3
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    losses = []
    for i in range(12):
        partner = (i + 6) % 12
        sims = z[i] @ z.detach().T / tau
        negatives = torch.stack([sims[j] for j in range(12) if j not in (i, partner)])
        hardest = negatives.topk(k).values
        losses.append(
            -sims[partner] + torch.logsumexp(torch.cat([sims[partner : partner + 1], hardest]), 0)
        )
    expected = torch.stack(losses).mean()
    got = nt_xent(z1, z2, temperature=tau, top_k=k)
    assert torch.allclose(got, expected, atol=1e-5)
    g_got = torch.autograd.grad(got, [z1, z2])
    g_exp = torch.autograd.grad(expected, [z1, z2])
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_got, g_exp, strict=True))
    # all 2N-2 negatives: same value as plain NT-Xent (only the gradient differs)
    assert torch.allclose(nt_xent(z1, z2, tau, top_k=10), nt_xent(z1, z2, tau), atol=1e-5)
    with pytest.raises(ValueError, match="top_k"):
        nt_xent(z1, z2, tau, top_k=11)
