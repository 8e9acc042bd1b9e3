"""Batched inference: uint8 images → encoder features."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def embed(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Features of ``images`` (uint8 [N,3,H,W]) from ``encoder`` in eval mode, float32 [N,D].

    Converts one batch at a time to float, so a 50k-image split never exists as float32.
    """
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = [
            encoder(images[i : i + batch_size].float().div_(255.0))
            for i in range(0, len(images), batch_size)
        ]
    finally:
        encoder.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)
