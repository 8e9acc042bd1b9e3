"""SSVI: the |θ| moments, the drop/grow invariants and the density-1.0 reduction to dense
variational training (Bayes by backprop), each against an independent reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from selfsup.compress.distill import DistillSet, batches
from selfsup.compress.ssvi import (
    SparseVariational,
    abs_moments,
    abs_snr,
    drop_fraction,
    global_topk_masks,
    ssvi_compress,
)
from selfsup.compress.targets import prunable_weight_names
from selfsup.config import CompressParams
from selfsup.models.encoders import convnet


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (0.3, 0.2), (-0.05, 0.1), (2.0, 0.5)])
def test_abs_moments_match_monte_carlo(mu: float, sigma: float) -> None:
    gen = torch.Generator().manual_seed(0)
    theta = (mu + sigma * torch.randn(2_000_000, generator=gen, dtype=torch.float64)).abs()
    mean, var = abs_moments(torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma).double())
    n = theta.numel()
    assert float(mean) == pytest.approx(float(theta.mean()), abs=5 * math.sqrt(float(var) / n))
    assert float(var) == pytest.approx(float(theta.var()), rel=1e-2)


def _tiny_data(n: int = 32, dim: int = 64, seed: int = 0) -> DistillSet:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=gen)
    return DistillSet(images=images, targets=torch.rand(n, dim, generator=gen))


def _perturbed(density: float) -> SparseVariational:
    torch.manual_seed(0)
    posterior = SparseVariational(convnet(8), density, sigma_init=0.05)
    with torch.no_grad():
        for rho in posterior.rho:
            rho.add_(torch.randn_like(rho))
    return posterior


def test_global_topk_masks_keep_exactly_the_largest() -> None:
    weights = [torch.randn(7, 5), torch.randn(40)]
    masks = global_topk_masks(weights, 0.25)
    kept = torch.cat([w[m].abs() for w, m in zip(weights, masks, strict=True)])
    dropped = torch.cat([w[~m].abs() for w, m in zip(weights, masks, strict=True)])
    assert len(kept) == round(0.25 * 75)
    assert float(kept.min()) >= float(dropped.max())


def test_drop_grow_keeps_counts_drops_low_snr_grows_large_gradients_at_zero() -> None:
    posterior = _perturbed(0.3)
    old_masks = [m.clone() for m in posterior.masks]
    old_mu = [m.detach().clone() for m in posterior.mu]
    old_rho = [r.detach().clone() for r in posterior.rho]
    grads = [torch.randn_like(m) for m in old_mu]
    counts = posterior.active_counts()
    changes = posterior.drop_grow(0.2, grads)
    assert posterior.active_counts() == counts
    for i, mask in enumerate(posterior.masks):
        old = old_masks[i]
        grown, dropped = mask & ~old, old & ~mask
        k = int(0.2 * int(old.sum()))
        assert int(grown.sum()) == int(dropped.sum()) == k > 0
        assert len(changes[i][0]) == len(changes[i][1]) == k
        assert bool((posterior.mu[i][grown] == 0).all())
        kept = old & mask
        assert torch.allclose(posterior.rho[i][grown], old_rho[i][kept].mean().expand(k))
        snr = abs_snr(old_mu[i], F.softplus(old_rho[i]))
        assert float(snr[dropped].max()) <= float(snr[kept].min())
        magnitude = grads[i].abs()
        assert float(magnitude[grown].min()) >= float(magnitude[~old & ~grown].max())


def test_training_keeps_the_nonzero_count_through_every_drop_grow() -> None:
    torch.manual_seed(0)
    encoder = convnet(8)
    names = prunable_weight_names(encoder)
    params = CompressParams(steps=12, batch_size=8, update_every=2, drop_fraction=0.5, density=0.2)
    initial = global_topk_masks([encoder.get_parameter(n).detach() for n in names], 0.2)
    result = ssvi_compress(encoder, _tiny_data(), params)
    assert len(result.active_counts) == 1 + 4  # initial + updates at t = 2, 4, 6, 8 (≤ 0.75·12)
    assert all(counts == result.active_counts[0] for counts in result.active_counts)
    final = result.posterior.masks
    assert any(not torch.equal(a, b) for a, b in zip(initial, final, strict=True))
    for name, mask in zip(names, final, strict=True):
        weight = encoder.get_parameter(name)
        assert bool((weight[~mask] == 0).all())
        assert torch.equal(
            weight.detach(), (mask * result.posterior.mu[names.index(name)]).detach()
        )


def test_drop_fraction_is_the_cosine_schedule() -> None:
    assert drop_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert drop_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert drop_fraction(100, 0.3, 100) == pytest.approx(0.0)


def test_density_one_reproduces_dense_variational_training() -> None:
    """At density 1.0 nothing is ever dropped or grown, and SSVI is plain Bayes by backprop:
    compared with a hand-written dense loop (same seed, batches and ε order)."""
    params = CompressParams(
        steps=6, batch_size=8, update_every=2, density=1.0, sigma_init=0.01, lr=1e-2
    )
    data = _tiny_data()
    torch.manual_seed(1)
    start = convnet(8)
    ours = convnet(8)
    ours.load_state_dict(start.state_dict())
    torch.manual_seed(123)
    result = ssvi_compress(ours, data, params)

    reference = convnet(8)
    reference.load_state_dict(start.state_dict())
    names = prunable_weight_names(reference)
    mus = [reference.get_parameter(n).detach().clone().requires_grad_() for n in names]
    rho0 = math.log(math.expm1(0.01))
    rhos = [torch.full_like(m, rho0).requires_grad_() for m in mus]
    others = [p for n, p in reference.named_parameters() if n not in names]
    optimizer = torch.optim.Adam([*mus, *rhos, *others], lr=1e-2)
    noise = 0.1 * float(data.targets.pow(2).mean().sqrt())
    reference.train()
    torch.manual_seed(123)
    for t, (images, targets) in enumerate(batches(data, 8, 6, 0), start=1):
        sigmas = [F.softplus(r) for r in rhos]
        weights = {
            n: m + s * torch.randn_like(m) for n, m, s in zip(names, mus, sigmas, strict=True)
        }
        out = functional_call(reference, weights, (images,))
        nll = (out - targets).pow(2).sum(dim=1).mean() / (2 * noise**2)
        kl = sum(
            (math.log(0.1) - torch.log(s) + (s**2 + m**2) / (2 * 0.1**2) - 0.5).sum()
            for m, s in zip(mus, sigmas, strict=True)
        )
        loss = nll + min(1.0, t / 3) * kl / len(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    assert all(c == result.active_counts[0] for c in result.active_counts)
    for i, name in enumerate(names):
        assert torch.allclose(ours.get_parameter(name), mus[i], atol=1e-6)
        assert torch.allclose(result.posterior.rho[i], rhos[i], atol=1e-6)
    for name, param in reference.named_parameters():
        if name not in names:
            assert torch.allclose(ours.get_parameter(name), param, atol=1e-6)
