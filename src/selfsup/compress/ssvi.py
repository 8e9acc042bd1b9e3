"""Sparse subspace variational inference (after Li et al., "Training Bayesian Neural Networks with
Sparse Subspace Variational Inference", ICLR 2024), label-free.

Each prunable weight has a Gaussian posterior ``N(μ, σ²)``, ``σ = softplus(ρ)``; one mask, shared
by μ and ρ, keeps exactly ``density × total`` of them active from the first step (SSVI never
trains a dense posterior — that is the point of the method: training cost and memory stay
sparse). The initial mask is a global magnitude top-k of the pretrained weights, μ starts from
them. Every ``ΔT`` iterations until ``update_until`` of training, each layer drops the fraction
``α/2·(1 + cos(π t / T_end))`` of its active weights with the lowest signal-to-noise ratio of
``|θ|`` (closed-form moments of the folded normal, :func:`abs_moments`) and grows as many
inactive ones with the largest dense gradient magnitude; grown weights start at ``μ = 0`` and
``ρ`` = the layer's mean active ρ, so the active count never changes. The likelihood is a
Gaussian on the original encoder's embeddings (no labels) and the KL to an ``N(0, s²)`` prior is
warmed up linearly. The deployed encoder is the posterior mean ``mask · μ``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from selfsup.compress.distill import DistillSet, batches
from selfsup.compress.targets import prunable_weight_names
from selfsup.config import CompressParams
from selfsup.observe.progress import Progress

log = logging.getLogger(__name__)


def abs_moments(mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E|θ|`` and ``Var|θ|`` for ``θ ~ N(μ, σ²)`` (the folded normal), elementwise.

    ``E|θ| = μ·erf(μ/(σ√2)) + σ·√(2/π)·exp(−μ²/2σ²)``, ``Var|θ| = μ² + σ² − (E|θ|)²``
    (clamped at 0 against rounding).
    """
    mean = mu * torch.erf(mu / (sigma * math.sqrt(2.0))) + sigma * math.sqrt(
        2.0 / math.pi
    ) * torch.exp(-(mu**2) / (2.0 * sigma**2))
    var = (mu**2 + sigma**2 - mean**2).clamp_min(0.0)
    return mean, var


def abs_snr(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio ``E|θ| / √Var|θ|``: low means the weight is noise around zero."""
    mean, var = abs_moments(mu, sigma)
    return mean / var.sqrt().clamp_min(torch.finfo(mu.dtype).tiny)


def drop_fraction(step: int, alpha: float, end_step: int) -> float:
    """The cosine-annealed share ``α/2·(1 + cos(π t / T_end))`` of active weights to replace."""
    return alpha / 2.0 * (1.0 + math.cos(math.pi * step / end_step))


def kl_weight(step: int, steps: int, warmup: float) -> float:
    """Linear KL warm-up from 0 to 1 over the first ``warmup`` share of the steps."""
    ramp = warmup * steps
    return 1.0 if ramp <= 0 else min(1.0, step / ramp)


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    """Elementwise ``KL(N(μ, σ²) ‖ N(0, s²))``."""
    return (
        math.log(prior_sigma) - torch.log(sigma) + (sigma**2 + mu**2) / (2.0 * prior_sigma**2) - 0.5
    )


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


def global_topk_masks(weights: list[torch.Tensor], density: float) -> list[torch.Tensor]:
    """Boolean masks keeping exactly ``round(density × total)`` entries of largest |w|, globally."""
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    keep = round(density * flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[flat.topk(keep).indices] = True
    return [
        m.view_as(w)
        for m, w in zip(torch.split(chosen, [w.numel() for w in weights]), weights, strict=True)
    ]


class SparseVariational(nn.Module):
    """The masked Gaussian posterior over an encoder's prunable weights."""

    def __init__(self, encoder: nn.Module, density: float, sigma_init: float) -> None:
        super().__init__()
        self.names = prunable_weight_names(encoder)
        weights = [encoder.get_parameter(n).detach() for n in self.names]
        masks = global_topk_masks(weights, density)
        rho = _inverse_softplus(sigma_init)
        self.mu = nn.ParameterList(
            [nn.Parameter(w * m) for w, m in zip(weights, masks, strict=True)]
        )
        self.rho = nn.ParameterList([nn.Parameter(torch.full_like(w, rho)) for w in weights])
        for i, mask in enumerate(masks):
            self.register_buffer(f"mask{i}", mask)

    @property
    def masks(self) -> list[torch.Tensor]:
        return [getattr(self, f"mask{i}") for i in range(len(self.names))]

    def sigmas(self) -> list[torch.Tensor]:
        return [F.softplus(rho) for rho in self.rho]

    def sample(self) -> list[torch.Tensor]:
        """One reparameterised draw ``mask · (μ + σ·ε)`` per layer (ε drawn in layer order)."""
        return [
            mask * (mu + sigma * torch.randn_like(mu))
            for mu, sigma, mask in zip(self.mu, self.sigmas(), self.masks, strict=True)
        ]

    def mean_weights(self) -> list[torch.Tensor]:
        """The posterior mean ``mask · μ``: the deployed weights."""
        return [(mask * mu).detach() for mu, mask in zip(self.mu, self.masks, strict=True)]

    def kl(self, prior_sigma: float) -> torch.Tensor:
        """KL of the active weights' posterior to the prior (inactive ones are exactly zero)."""
        terms = [
            torch.where(mask, gaussian_kl(mu, sigma, prior_sigma), 0.0).sum()
            for mu, sigma, mask in zip(self.mu, self.sigmas(), self.masks, strict=True)
        ]
        return torch.stack(terms).sum()

    def active_counts(self) -> list[int]:
        return [int(mask.sum()) for mask in self.masks]

    @torch.no_grad()
    def drop_grow(
        self,
        fraction: float,
        dense_grads: list[torch.Tensor],
        optimizer: torch.optim.Optimizer | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Replace ``fraction`` of each layer's active weights: drop lowest |θ|-SNR, grow largest
        dense |gradient| among the weights inactive before the drop. Returns ``(dropped, grown)``
        flat indices per layer. Optimizer moments of the changed entries are reset."""
        changes = []
        for i, (mu, rho, grad) in enumerate(zip(self.mu, self.rho, dense_grads, strict=True)):
            mask = self.masks[i].view(-1)
            active = int(mask.sum())
            k = min(int(fraction * active), mask.numel() - active)
            empty = torch.empty(0, dtype=torch.long)
            if k <= 0:
                changes.append((empty, empty))
                continue
            snr = abs_snr(mu.view(-1), F.softplus(rho.view(-1)))
            dropped = snr.masked_fill(~mask, math.inf).topk(k, largest=False).indices
            grown = grad.abs().view(-1).masked_fill(mask, -math.inf).topk(k).indices
            mask[dropped] = False
            mean_rho = rho.view(-1)[mask].mean()
            mask[grown] = True
            mu.view(-1)[dropped] = 0.0
            mu.view(-1)[grown] = 0.0
            rho.view(-1)[grown] = mean_rho
            if optimizer is not None:
                _reset_moments(optimizer, [mu, rho], torch.cat([dropped, grown]))
            changes.append((dropped, grown))
        return changes


def _reset_moments(
    optimizer: torch.optim.Optimizer, params: list[nn.Parameter], flat_idx: torch.Tensor
) -> None:
    """Zero Adam-style moment buffers at ``flat_idx`` so a regrown weight starts fresh."""
    for param in params:
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.view(-1)[flat_idx] = 0.0


@dataclass
class SSVIResult:
    """The trained posterior and the per-layer active counts after every drop/grow step."""

    posterior: SparseVariational
    losses: list[float] = field(default_factory=list)
    active_counts: list[list[int]] = field(default_factory=list)


def ssvi_compress(encoder: nn.Module, data: DistillSet, params: CompressParams) -> SSVIResult:
    """Train the sparse posterior on ``encoder``; afterwards its weights are the posterior mean."""
    posterior = SparseVariational(encoder, params.density, params.sigma_init)
    names = posterior.names
    others = [p for n, p in encoder.named_parameters() if n not in set(names)]
    optimizer = torch.optim.Adam([*posterior.parameters(), *others], lr=params.lr)
    noise = params.likelihood_sigma * data.target_rms
    end = max(1, int(params.update_until * params.steps))
    result = SSVIResult(posterior, active_counts=[posterior.active_counts()])
    encoder.train()
    steps = batches(data, params.batch_size, params.steps, params.seed)
    with Progress(params.steps, "ssvi") as progress:
        for t, (images, targets) in enumerate(steps, start=1):
            update = t % params.update_every == 0 and t <= end and params.drop_fraction > 0
            weights = posterior.sample()
            if update:
                for weight in weights:
                    weight.retain_grad()
            out = functional_call(encoder, dict(zip(names, weights, strict=True)), (images,))
            nll = (out - targets).pow(2).sum(dim=1).mean() / (2.0 * noise**2)
            beta = kl_weight(t, params.steps, params.kl_warmup)
            loss = nll + beta * posterior.kl(params.prior_sigma) / len(data)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if update:
                grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
                fraction = drop_fraction(t, params.drop_fraction, end)
                posterior.drop_grow(fraction, grads, optimizer)
                result.active_counts.append(posterior.active_counts())
            result.losses.append(float(loss.detach()))
            progress.step(loss=result.losses[-1])
    with torch.no_grad():
        for name, weight in zip(names, posterior.mean_weights(), strict=True):
            encoder.get_parameter(name).copy_(weight)
    encoder.eval()
    if result.losses:
        log.info("ssvi: loss %.4g → %.4g", result.losses[0], result.losses[-1])
    return result
