"""Global unstructured magnitude pruning (``torch.nn.utils.prune``) + feature distillation.

One global threshold over all prunable weights (not a per-layer quota): layers with many
redundant weights (the wide late convolutions) lose more, which costs less accuracy than a
uniform density at the same size (Frankle & Carbin; Blalock et al.). The masks stay attached
while the encoder is fine-tuned to the original embeddings (MSE), so pruned weights stay zero,
and are made permanent at the end.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn.utils import prune

from selfsup.compress.distill import DistillSet, batches
from selfsup.compress.targets import prunable_modules
from selfsup.config import CompressParams
from selfsup.observe.progress import Progress

log = logging.getLogger(__name__)


def prune_global(encoder: nn.Module, density: float) -> None:
    """Zero the ``1 - density`` share of prunable weights with the smallest |w| (in place).

    Leaves the ``torch.nn.utils.prune`` reparametrisation (``weight_orig`` × ``weight_mask``)
    attached; :func:`make_permanent` removes it.
    """
    modules = [module for _, module in prunable_modules(encoder)]
    targets: list[tuple[nn.Module, str]] = [(module, "weight") for module in modules]
    total = sum(module.weight.numel() for module in modules)
    amount = total - round(density * total)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)


def make_permanent(encoder: nn.Module) -> None:
    """Fold the masks into the weights (plain ``weight`` parameters with zeros)."""
    for _, module in prunable_modules(encoder):
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")  # type: ignore[no-untyped-call]


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Squared error per embedding, summed over dimensions, averaged over the batch."""
    return (student - teacher).pow(2).sum(dim=1).mean()


def finetune(encoder: nn.Module, data: DistillSet, params: CompressParams) -> list[float]:
    """Fit ``encoder`` (masks attached) to the teacher embeddings; returns the loss per step."""
    optimizer = torch.optim.Adam(encoder.parameters(), lr=params.lr)
    losses: list[float] = []
    encoder.train()
    with Progress(params.steps, "magnitude fine-tune") as progress:
        for images, targets in batches(data, params.batch_size, params.steps, params.seed):
            loss = distill_loss(encoder(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            losses.append(float(loss.detach()))
            progress.step(loss=losses[-1])
    encoder.eval()
    if losses:
        log.info("magnitude fine-tune: loss %.4g → %.4g", losses[0], losses[-1])
    return losses


def magnitude_compress(encoder: nn.Module, data: DistillSet, params: CompressParams) -> list[float]:
    """Prune ``encoder`` in place to ``params.density``, fine-tune, make permanent."""
    prune_global(encoder, params.density)
    losses = finetune(encoder, data, params)
    make_permanent(encoder)
    return losses
