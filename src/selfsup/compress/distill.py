"""Label-free fine-tuning data: unlabeled images and the original encoder's embeddings of them.

Both pruning methods fit the compressed encoder to what the original one computes (feature
distillation), so no label is read. The teacher's embeddings are computed once, on the
un-augmented images, and batches are drawn from a seeded generator so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.models.embed import embed


@dataclass(frozen=True)
class DistillSet:
    """uint8 images [N,3,H,W] and the teacher's float embeddings [N,D] of them."""

    images: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def target_rms(self) -> float:
        """Root-mean-square of the teacher embeddings: the scale of the likelihood noise."""
        return float(self.targets.pow(2).mean().sqrt())


def distill_set(teacher: nn.Module, images: torch.Tensor, batch_size: int = 512) -> DistillSet:
    """Embed ``images`` with the (frozen) teacher once."""
    return DistillSet(images=images, targets=embed(teacher, images, batch_size))


def batches(
    data: DistillSet, batch_size: int, steps: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` random batches ``(float images in [0,1], teacher embeddings)`` (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    size = min(batch_size, len(data))
    for _ in range(steps):
        idx = torch.randperm(len(data), generator=generator)[:size]
        yield data.images[idx].float().div_(255.0), data.targets[idx]
