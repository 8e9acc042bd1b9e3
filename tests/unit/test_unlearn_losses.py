"""LAF's losses against explicit per-sample loops; active units against a closed form; the head
folded from a probe against the probe itself."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.evaluate.linear_probe import fit_linear_probe
from selfsup.unlearn.head import head_from_probe
from selfsup.unlearn.laf import ra_loss, ue_loss
from selfsup.unlearn.vae import RepresentationVAE, active_units, train_vae, vae_loss


def _vae(seed: int, dim: int = 6) -> RepresentationVAE:
    torch.manual_seed(seed)
    return RepresentationVAE(dim, hidden=5, latent=3).eval()


def test_ue_loss_matches_an_explicit_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    e_r, e_f = torch.randn(7, 6, generator=gen), torch.randn(4, 6, generator=gen)
    h_s, h_u = _vae(1), _vae(2)
    expected = 0.0
    with torch.no_grad():
        for e in e_r:
            err = float(((h_s.decoder(h_s.mu(h_s.encoder(e))) - e) ** 2).sum())
            expected += math.exp(err / (err + 1))
        for e in e_f:
            err = float(((h_u.decoder(h_u.mu(h_u.encoder(e))) - e) ** 2).sum())
            expected -= math.exp(err / (err + 1))
    assert float(ue_loss(e_r, e_f, h_s, h_u).detach()) == pytest.approx(expected, rel=1e-5)


def test_ra_loss_matches_an_explicit_loop() -> None:
    gen = torch.Generator().manual_seed(1)
    f_r, f0_r = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    f_f, f0_f = torch.randn(3, 8, generator=gen), torch.randn(3, 8, generator=gen)
    tau = 0.7

    def dist(a: torch.Tensor, b: torch.Tensor) -> float:
        return 1 - float(a @ b) / (float(a.norm()) * float(b.norm()))

    expected = 0.0
    for i in range(5):
        d_ri = dist(f_r[i], f0_r[i])
        expected += d_ri - math.log(sum(math.exp(dist(f_f[j], f0_f[j]) / tau) for j in range(3)))
    assert float(ra_loss(f_r, f0_r, f_f, f0_f, tau)) == pytest.approx(expected, rel=1e-5)


def test_ra_loss_pulls_remaining_in_and_pushes_forget_out() -> None:
    """The gradient's sign: d_r should shrink, d_f should grow (a known property of the loss)."""
    gen = torch.Generator().manual_seed(2)
    f0_r, f0_f = torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen)
    f_r = (f0_r + 0.5 * torch.randn(4, 8, generator=gen)).requires_grad_(True)
    f_f = (f0_f + 0.5 * torch.randn(4, 8, generator=gen)).requires_grad_(True)
    loss = ra_loss(f_r, f0_r, f_f, f0_f, 1.0)
    loss.backward()  # type: ignore[no-untyped-call]
    with torch.no_grad():
        step_r, step_f = f_r - 0.01 * f_r.grad, f_f - 0.01 * f_f.grad  # type: ignore[operator]
        cos = torch.nn.functional.cosine_similarity
        assert bool((cos(step_r, f0_r) > cos(f_r, f0_r)).all())
        assert bool((cos(step_f, f0_f) < cos(f_f, f0_f)).all())


def test_vae_loss_matches_the_closed_form_gaussian_kl() -> None:
    e, recon = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 2.5]])
    mu, logvar = torch.tensor([[0.3, -0.2, 0.0]]), torch.tensor([[0.1, -0.4, 0.0]])
    kl = sum(
        0.5 * (m**2 + math.exp(lv) - 1 - lv)
        for m, lv in zip([0.3, -0.2, 0.0], [0.1, -0.4, 0.0], strict=True)
    )
    expected = 0.25 + 0.25 + 0.025 * kl
    assert float(vae_loss(recon, e, mu, logvar, 0.025)) == pytest.approx(expected, rel=1e-6)


def test_active_units_match_the_closed_form_variance() -> None:
    """With the encoder made linear (identity weights, a bias that keeps ReLU in its linear
    range) μ = W x + c, so Var_x(μ_d) = Σ_k W_dk² Var(x_k) for independent unit-variance x."""
    vae = RepresentationVAE(3, hidden=3, latent=3)
    with torch.no_grad():
        vae.encoder[0].weight.copy_(torch.eye(3))  # type: ignore[operator]
        vae.encoder[0].bias.fill_(10.0)  # type: ignore[operator]  # keeps ReLU linear
        vae.mu.weight.copy_(torch.diag(torch.tensor([1.0, 0.05, 0.2])))
        vae.mu.bias.zero_()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(20_000, 3, generator=gen)  # unit variance per column
    # closed form: Var(μ) = (1, 0.0025, 0.04) → two dimensions above 0.01, one above 0.05
    assert active_units(vae, x, threshold=0.01) == 2
    assert active_units(vae, x, threshold=0.05) == 1
    assert active_units(vae, x, threshold=2.0) == 0


def test_a_trained_vae_reconstructs_low_rank_data_with_active_units() -> None:
    gen = torch.Generator().manual_seed(4)
    data = torch.randn(512, 2, generator=gen) @ torch.randn(2, 10, generator=gen)
    vae, losses = train_vae(
        data,
        hidden=32,
        latent=4,
        epochs=40,
        kl_weight=0.025,
        lr=3e-3,
        batch_size=64,
        generator=gen,
    )
    assert losses[-1] < 0.5 * losses[0]
    assert active_units(vae, data) >= 2  # the data has two independent directions


def test_head_from_probe_gives_the_probe_logits() -> None:
    gen = torch.Generator().manual_seed(5)
    features = torch.randn(60, 4, generator=gen) * torch.tensor([1.0, 5.0, 0.1, 2.0]) + 3
    labels = torch.arange(60) % 3
    probe = fit_linear_probe(features, labels, num_classes=3, epochs=20)
    head = head_from_probe(probe)
    torch.testing.assert_close(
        head(features).double(), probe.logits(features), rtol=1e-4, atol=1e-4
    )
