"""SimCLR views with torchvision.transforms.v2 on uint8 tensors, random per sample.

A v2 transform called on a batched tensor draws *one* set of parameters for the whole batch (one
crop for 256 images), which silently weakens contrastive learning. So the pipeline here is applied
to each image separately — inside DataLoader workers — and every view gets its own crop, flip,
jitter and grayscale draw. Images stay uint8 tensors end to end (no PIL round trip), a quarter of
the memory of float views in the loader's queues. On 32×32 images one view costs about 0.3 ms on
one core, half of it the hue shift, ~15% more than PIL; the batched kornia backend
(:mod:`selfsup.data.augment_batched`) is the faster default (BENCHMARKS.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from selfsup.config import AugmentParams

if TYPE_CHECKING:  # importing torchvision costs ~2 s of start-up; only this backend needs it
    from torchvision.transforms import v2


def simclr_transform(size: int, params: AugmentParams) -> v2.Compose:
    """The SimCLR augmentation for one uint8 [3,H,W] image → uint8 [3,size,size]."""
    from torchvision.transforms import v2

    s = params.jitter_strength
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(size, scale=(params.crop_scale_min, 1.0), antialias=True),
        v2.RandomHorizontalFlip(p=params.flip_p),
        v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=params.jitter_p),
        v2.RandomGrayscale(p=params.grayscale_p),
    ]
    if params.blur_p > 0:
        kernel = max(3, (size // 10) | 1)  # ~10% of the image side, odd (as in SimCLR)
        steps.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=params.blur_p))
    return v2.Compose(steps)


class TwoViews(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Two independently augmented views of each image of a uint8 [N,3,H,W] tensor."""

    def __init__(self, images: torch.Tensor, transform: v2.Compose) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        return self.transform(image), self.transform(image)
