"""Methods on two augmented views of each image: SimCLR (Chen et al. 2020), its top-k NT-Xent
control, GroCo and G-SimCLR's distinct-pseudo-label batches (docs/methods.md).

Losses see the projections gathered from all ranks (identity for one process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from selfsup.data.augment_batched import BatchTwoViews
from selfsup.data.shards import read_dataset_manifest
from selfsup.losses import nt_xent
from selfsup.losses.groco import groco_loss, same_image_mask
from selfsup.train import distributed
from selfsup.train.gsimclr import DistinctLabelBatches, pseudo_label_split
from selfsup.train.loaders import (
    as_unit_float,
    check_batch,
    epoch_seed,
    training_split,
    view_loader,
)
from selfsup.train.methods.base import Context, Method, project
from selfsup.train.schedule import view_size


class Simclr(Method):
    """NT-Xent on the two views of each image of the train split (its ``max_images`` subset)."""

    makes_views = True

    def __init__(self, ctx: Context, data: Path, pairs: Path | None) -> None:
        super().__init__(ctx, data, pairs)
        self.lineage["data"] = read_dataset_manifest(data)["content_hash"]
        self.images = training_split(data, self.params).images
        check_batch(len(self.images), self.params)
        self.train_images = len(self.images)
        self.steps_per_epoch = len(self.images) // self.params.batch_size
        self.views: BatchTwoViews | None = None

    def device_views(self, epoch: int) -> BatchTwoViews | None:
        """The step's view maker with ``augment.placement=device`` (at the epoch's size)."""
        if not self.ctx.fast.device_views:
            return None
        size = view_size(
            epoch, self.params.epochs, int(self.images.shape[-1]), self.params.progressive_resize
        )
        return BatchTwoViews(size, self.params.augment)

    def sampler(self, epoch: int) -> Sampler[list[int]] | None:
        """Global batches replacing the shuffled ones (None: shuffled)."""
        return None

    def batches(self, epoch: int) -> DataLoader[Any]:
        c = self.ctx
        self.views = self.device_views(epoch)
        return view_loader(self.images, self.params, epoch, c.device, c.job, self.sampler(epoch))

    def two_views(self, batch: Any) -> torch.Tensor:
        """The step's [2B,3,H,W] float views: made on the device from a uint8 batch with
        ``augment.placement=device``, else the loader's two views moved there."""
        device = self.ctx.device
        if self.views is not None:
            first, second = self.views.views(batch.to(device, non_blocking=True))
            return torch.cat([first, second])
        view1, view2 = batch
        return as_unit_float(torch.cat([view1, view2]).to(device, non_blocking=True))

    def embed(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Gathered projections of both views, and this rank's image count."""
        x = self.two_views(batch)
        z1, z2 = project(net, x, self.ctx.device, self.ctx.fast)
        return distributed.gather(z1), distributed.gather(z2), x.shape[0] // 2

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Loss of projections ``z1``, ``z2`` ``[N, D]`` of two views of the same N images."""
        return nt_xent(z1, z2, temperature=self.params.temperature)

    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        z1, z2, n = self.embed(net, batch)
        return self.objective(z1, z2), n


class SimclrTopk(Simclr):
    """NT-Xent on each anchor's ``groco_k`` hardest negatives (GroCo's control)."""

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent(z1, z2, temperature=self.params.temperature, top_k=self.params.groco_k)


class Groco(Simclr):
    """GroCo's sorting loss, the other view of each image its one positive."""

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        p = self.params
        return groco_loss(
            torch.cat([z1, z2]),
            same_image_mask(len(z1), device=z1.device),
            k=p.groco_k,
            steepness=p.groco_steepness,
            max_positives=p.groco_max_positives,
        )


class Gsimclr(Simclr):
    """NT-Xent on batches without two images of one pseudo-class (:mod:`selfsup.train.gsimclr`)."""

    def __init__(self, ctx: Context, data: Path, pairs: Path | None) -> None:
        super().__init__(ctx, data, pairs)
        split = training_split(data, self.params)
        self.pseudo: np.ndarray
        self.pseudo, gsimclr = pseudo_label_split(split, self.params, ctx.device)
        self.metrics.update(gsimclr)

    def sampler(self, epoch: int) -> Sampler[list[int]] | None:
        p = self.params
        return DistinctLabelBatches(self.pseudo, p.batch_size, epoch_seed(p.seed, epoch))
