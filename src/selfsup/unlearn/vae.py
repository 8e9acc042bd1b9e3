"""VAEs on representations, and their active units (a posterior-collapse check).

LAF models the distribution of representations ``e = f(x)`` of the remaining data (``h_s``) and
of the forget data (``h_u``) with two small VAEs; their reconstruction error
``E(x) = ‖h(e) − e‖²`` then tells the extractor how "remaining-like" or "forget-like" a
representation is. A collapsed VAE (KL term wins, the decoder ignores ``z``) reconstructs every
input as the mean and carries no signal, hence the active-unit count (Burda et al. 2016): latent
dimension ``d`` is active when ``Cov_x(E_q[z_d | x]) > threshold`` (0.01).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.errors import SelfsupError


class RepresentationVAE(nn.Module):
    """Gaussian VAE ``D → hidden → (μ, log σ²) ∈ R^latent → hidden → D`` (MLPs)."""

    def __init__(self, dim: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def posterior(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ, log σ²)`` of ``q(z | e)``."""
        hidden = self.encoder(e)
        return self.mu(hidden), self.logvar(hidden)

    def reconstruct(self, e: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction through the posterior mean (``z = μ``).

        Used for ``E(x)`` during unlearning, so the loss does not depend on a noise draw.
        """
        mu, _ = self.posterior(e)
        out: torch.Tensor = self.decoder(mu)
        return out

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised sample's reconstruction, ``μ`` and ``log σ²``."""
        mu, logvar = self.posterior(e)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar


def vae_loss(
    recon: torch.Tensor, e: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_weight: float
) -> torch.Tensor:
    """Mean over the batch of ``‖recon − e‖² + kl_weight · KL(q(z|e) ‖ N(0, I))``."""
    mse = (recon - e).pow(2).sum(dim=1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    return (mse + kl_weight * kl).mean()


def reconstruction_error(vae: RepresentationVAE, e: torch.Tensor) -> torch.Tensor:
    """``E = ‖h(e) − e‖²`` per row ``[N]`` (differentiable in ``e``)."""
    return (vae.reconstruct(e) - e).pow(2).sum(dim=1)


def train_vae(
    features: torch.Tensor,
    *,
    hidden: int,
    latent: int,
    epochs: int,
    kl_weight: float,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[RepresentationVAE, list[float]]:
    """Fit a VAE to ``features`` [N, D] with Adam; returns it (eval mode, frozen) and its losses.

    Representations are small vectors, so this costs a fraction of one pass of the encoder.
    """
    if features.ndim != 2 or len(features) < 1:
        raise SelfsupError(f"VAE needs [N, D] features, got {tuple(features.shape)}")
    vae = RepresentationVAE(features.shape[1], hidden, latent).to(features.device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        total = 0.0
        for start in range(0, len(features), batch_size):
            batch = features[order[start : start + batch_size]]
            recon, mu, logvar = vae(batch)
            loss = vae_loss(recon, batch, mu, logvar, kl_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(features))
    vae.eval()
    vae.requires_grad_(False)
    return vae, losses


@torch.no_grad()
def active_units(vae: RepresentationVAE, features: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions ``d`` with ``Var_x(E_q[z_d | x]) > threshold``."""
    mu, _ = vae.posterior(features)
    return int((mu.var(dim=0, unbiased=False) > threshold).sum())
