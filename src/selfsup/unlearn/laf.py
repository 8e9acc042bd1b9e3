"""Label-Agnostic Forgetting (Shen et al., ICLR 2024): unlearning an encoder without labels.

Given the remaining data ``D_r`` and the forget data ``D_f`` as *images only*:

1. two VAEs on the original representations, ``h_s`` on ``D_r`` and ``h_u`` on ``D_f``
   (:mod:`selfsup.unlearn.vae`), then frozen;
2. **extractor unlearning**, with ``E(x) = ‖h(f(x)) − f(x)‖²``:
   ``L_UE = Σ_{x∈D_r} exp(E_s/(E_s+1)) − Σ_{x∈D_f} exp(E_u/(E_u+1))`` — keep remaining
   representations where ``h_s`` reconstructs them, push forget representations to where ``h_u``
   does not (each term is bounded in [1, e), so the forget term cannot run away);
3. **representation alignment** to the frozen original encoder ``f₀``, with
   ``d = 1 − cos(f(x), f₀(x))``: ``L_RA = Σ_i [d_r,i − log Σ_j exp(d_f,j / τ)]`` — remaining
   representations stay where they were, forget representations move away.

Steps 2 and 3 alternate batch by batch — one L_UE step, then one L_RA step on the same pair of
batches, as in the authors' code — one pass over ``D_f`` per epoch (every forget batch paired with
a random remaining batch of the same size), with separate Adam optimisers over the encoder's
weights. The encoder stays in eval mode: BatchNorm keeps the original running statistics, so
forget batches cannot shift them. Labels never enter this module: :func:`require_unlabelled`
refuses anything but a bare uint8 image tensor.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.config import UnlearnParams
from selfsup.errors import SelfsupError
from selfsup.models.embed import embed
from selfsup.observe.progress import Progress
from selfsup.train.loaders import as_unit_float
from selfsup.unlearn.vae import (
    RepresentationVAE,
    active_units,
    reconstruction_error,
    train_vae,
)


def require_unlabelled(images: object, name: str) -> torch.Tensor:
    """``images`` if it is a bare uint8 ``[N,3,H,W]`` tensor; otherwise a SelfsupError.

    The label-agnostic claim is only as good as this check: a Split, a (images, labels) pair or a
    dict would carry labels into the unlearning path, so they are refused here, at the door.
    Not an ``assert``: it must hold under ``python -O`` too.
    """
    if type(images) is not torch.Tensor:
        raise SelfsupError(
            f"LAF takes unlabelled images only: {name} must be a bare uint8 tensor, "
            f"got {type(images).__name__}"
        )
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise SelfsupError(
            f"LAF {name} must be uint8 [N,3,H,W] images, got {images.dtype} {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise SelfsupError(f"LAF {name} is empty")
    return images


def _bounded(error: torch.Tensor) -> torch.Tensor:
    return torch.exp(error / (error + 1))


def ue_loss(
    e_remaining: torch.Tensor,
    e_forget: torch.Tensor,
    h_s: RepresentationVAE,
    h_u: RepresentationVAE,
) -> torch.Tensor:
    """``L_UE = Σ_r exp(E_s/(E_s+1)) − Σ_f exp(E_u/(E_u+1))`` of two batches of representations."""
    e_s = reconstruction_error(h_s, e_remaining)
    e_u = reconstruction_error(h_u, e_forget)
    return _bounded(e_s).sum() - _bounded(e_u).sum()


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 − cos(a_i, b_i)`` per row."""
    return 1 - F.cosine_similarity(a, b, dim=1)


def ra_loss(
    f_remaining: torch.Tensor,
    f0_remaining: torch.Tensor,
    f_forget: torch.Tensor,
    f0_forget: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """``L_RA = Σ_i [d_r,i − log Σ_j exp(d_f,j / τ)]``; ``i``: remaining rows, ``j``: forget."""
    d_r = cosine_distance(f_remaining, f0_remaining)
    d_f = cosine_distance(f_forget, f0_forget)
    return (d_r - torch.logsumexp(d_f / temperature, dim=0)).sum()


@dataclass
class LafResult:
    """What the run did: VAE losses and active units, per-epoch losses, seconds per phase."""

    vae_loss: dict[str, list[float]]
    active_units: dict[str, int]
    ue_loss: list[float] = field(default_factory=list)
    ra_loss: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "vae_loss": self.vae_loss,
            "active_units": self.active_units,
            "ue_loss_per_epoch": self.ue_loss,
            "ra_loss_per_epoch": self.ra_loss,
            "seconds": self.seconds,
        }


def laf_unlearn(
    encoder: nn.Module,
    remaining: object,
    forget: object,
    params: UnlearnParams,
    device: torch.device,
) -> tuple[nn.Module, LafResult]:
    """Unlearn ``forget`` from ``encoder`` (a copy is trained; the argument is left unchanged).

    ``remaining`` and ``forget`` must be bare uint8 image tensors (:func:`require_unlabelled`).
    """
    remaining_images = require_unlabelled(remaining, "remaining")
    forget_images = require_unlabelled(forget, "forget")
    generator = torch.Generator().manual_seed(params.seed)
    torch.manual_seed(params.seed)
    original = copy.deepcopy(encoder).to(device).eval().requires_grad_(False)
    model = copy.deepcopy(encoder).to(device).eval().requires_grad_(True)

    started = time.perf_counter()
    f0_r = embed(original, remaining_images.to(device), params.batch_size)
    f0_f = embed(original, forget_images.to(device), params.batch_size)
    vaes: dict[str, RepresentationVAE] = {}
    losses: dict[str, list[float]] = {}
    for name, features in (("remaining", f0_r), ("forget", f0_f)):
        vaes[name], losses[name] = train_vae(
            features,
            hidden=params.vae_hidden,
            latent=params.vae_latent,
            epochs=params.vae_epochs,
            kl_weight=params.vae_kl_weight,
            lr=params.vae_lr,
            batch_size=params.batch_size,
            generator=generator,
        )
    result = LafResult(
        vae_loss=losses,
        active_units={
            "remaining": active_units(vaes["remaining"], f0_r, params.active_unit_threshold),
            "forget": active_units(vaes["forget"], f0_f, params.active_unit_threshold),
            "latent": params.vae_latent,
        },
    )
    result.seconds["vae"] = time.perf_counter() - started

    ue_opt = torch.optim.Adam(model.parameters(), lr=params.ue_lr)
    ra_opt = torch.optim.Adam(model.parameters(), lr=params.ra_lr)
    n_f, n_r, size = len(forget_images), len(remaining_images), params.batch_size
    unlearning_start = time.perf_counter()
    steps = params.epochs * -(-n_f // size)
    with Progress(steps, "unlearn: LAF (UE + RA steps)") as progress:
        for _ in range(params.epochs):
            order = torch.randperm(n_f, generator=generator)
            ue_total = ra_total = 0.0
            for start in range(0, n_f, size):
                idx_f = order[start : start + size]
                idx_r = torch.randint(0, n_r, (len(idx_f),), generator=generator)
                x_r = as_unit_float(remaining_images[idx_r].to(device))
                x_f = as_unit_float(forget_images[idx_f].to(device))
                ue = ue_loss(model(x_r), model(x_f), vaes["remaining"], vaes["forget"])
                ue_opt.zero_grad(set_to_none=True)
                ue.backward()  # type: ignore[no-untyped-call]
                ue_opt.step()
                ra = ra_loss(
                    model(x_r),
                    f0_r[idx_r.to(device)],
                    model(x_f),
                    f0_f[idx_f.to(device)],
                    params.ra_temperature,
                )
                ra_opt.zero_grad(set_to_none=True)
                ra.backward()  # type: ignore[no-untyped-call]
                ra_opt.step()
                ue_total += ue.item()
                ra_total += ra.item()
                progress.step(ue=ue.item(), ra=ra.item())
            result.ue_loss.append(ue_total)
            result.ra_loss.append(ra_total)
    result.seconds["unlearning"] = time.perf_counter() - unlearning_start
    model.requires_grad_(False)
    return model, result
