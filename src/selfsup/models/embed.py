"""Batched inference: uint8 images → encoder features."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from selfsup.observe.progress import Progress


@torch.no_grad()
def embed(
    encoder: nn.Module, images: torch.Tensor, batch_size: int = 512, desc: str | None = None
) -> torch.Tensor:
    """Features of ``images`` (uint8 [N,3,H,W]) from ``encoder`` in eval mode, float32 [N,D].

    Converts one batch at a time to float, so a 50k-image split never exists as float32.
    ``desc`` names the progress shown (a long pass over a big split; none without it).
    """
    was_training = encoder.training
    encoder.eval()
    chunks = []
    try:
        with Progress(len(images), desc, unit="image") if desc else nullcontext() as progress:
            for i in range(0, len(images), batch_size):
                chunks.append(encoder(images[i : i + batch_size].float().div_(255.0)))
                if progress is not None:
                    progress.update(len(chunks[-1]))
    finally:
        encoder.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)
