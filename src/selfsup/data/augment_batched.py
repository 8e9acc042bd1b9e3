"""SimCLR views made a whole batch at a time with kornia, random parameters per sample.

Per-image torchvision v2 pipelines pay Python and dispatch overhead on every 32×32 image; kornia
draws one parameter tensor per batch (one crop box, flip bit, jitter factors and grayscale bit
*per image*) and applies each op as one batched tensor call. It runs either as the DataLoader's
``collate_fn``, i.e. inside the worker processes, in parallel with the training step
(``augment.placement=loader``), or on the training device on a batch of uint8 images that crossed
the bus as bytes (``placement=device``, :meth:`BatchTwoViews.views`): on a GPU the augmentation
then costs a few kernels instead of the CPU workers' time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from selfsup.config import AugmentParams

if TYPE_CHECKING:
    import kornia.augmentation as K


def kornia_simclr(size: int, params: AugmentParams) -> K.AugmentationSequential:
    """The SimCLR recipe of :func:`selfsup.data.augment.simclr_transform`, batched."""
    import kornia.augmentation as K  # on first use: a stage checks its inputs before this import

    s = params.jitter_strength
    steps: list[K.AugmentationBase2D] = [
        K.RandomResizedCrop((size, size), scale=(params.crop_scale_min, 1.0)),
        K.RandomHorizontalFlip(p=params.flip_p),
        K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=params.jitter_p),
        K.RandomGrayscale(p=params.grayscale_p),
    ]
    if params.blur_p > 0:
        kernel = max(3, (size // 10) | 1)
        steps.append(K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=params.blur_p))
    return K.AugmentationSequential(*steps)


class Images(Dataset[torch.Tensor]):
    """The raw uint8 images; the views are made by :class:`BatchTwoViews` on the batch."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


class BatchTwoViews:
    """``collate_fn``: a list of uint8 [3,H,W] images → two float [B,3,size,size] views in [0,1]."""

    def __init__(self, size: int, params: AugmentParams) -> None:
        self.augment = kornia_simclr(size, params)

    def __call__(self, batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.views(torch.stack(batch))

    def views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views of a uint8 [B,3,H,W] batch, on the batch's device, as floats in [0, 1].

        kornia draws the random parameters on the CPU (seeded by the global torch generator, so
        a resumed run redraws the same ones) and applies them on the images' device.
        """
        unit = images.float().div_(255.0)
        with torch.no_grad():
            first, second = self.augment(unit), self.augment(unit)
        return first.clamp_(0.0, 1.0), second.clamp_(0.0, 1.0)
