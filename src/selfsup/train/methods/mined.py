"""Methods on mined positive pairs (a ``selfsup mine`` output): the Transitive Invariance triplet
loss alone (``triplet``), or a mined term added to a view loss each step (``simclr+triplet``,
``groco+mined``: GroCo with graph positives).

Every rank draws the same negatives from the same gathered projections: one global loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from selfsup.data.augment import simclr_transform
from selfsup.data.shards import read_dataset_manifest
from selfsup.errors import ConfigError
from selfsup.losses import choose_negatives, triplet_loss
from selfsup.losses.groco import groco_loss
from selfsup.train import distributed
from selfsup.train.loaders import epoch_seed, forever, pair_loader
from selfsup.train.methods.base import Context, Method, project
from selfsup.train.methods.views import Groco, Simclr
from selfsup.train.pairs import PairViews, graph_positive_mask, load_pairs, same_node_mask


class MinedPairs:
    """The pairs of a mined dataset (``max_images``: a seeded subset of them), their graph's
    edges, and the two losses on a batch of them."""

    def __init__(self, ctx: Context, mined: Path, data: Path) -> None:
        self.ctx, p = ctx, ctx.params
        self.patches, self.edges = load_pairs(mined, p.batch_size)
        index = self.edges
        if p.max_images is not None and p.max_images < len(index):
            order = torch.randperm(len(index), generator=torch.Generator().manual_seed(p.seed))
            index = index[order[: p.max_images]]
        self.set = PairViews(
            self.patches, index, simclr_transform(self.patches.shape[-1], p.augment)
        )
        self.hash = (
            None if Path(mined) == Path(data) else read_dataset_manifest(mined)["content_hash"]
        )
        self.negatives = torch.Generator()

    def loader(self, epoch: int, salt: int = 0) -> DataLoader[Any]:
        """This rank's shuffled batches of pairs for ``epoch``; reseeds the negatives' draws."""
        self.negatives = torch.Generator().manual_seed(epoch_seed(self.ctx.params.seed, epoch) + 13)
        return pair_loader(self.set, self.ctx.params, epoch, self.ctx.device, salt, self.ctx.job)

    def embed(
        self, net: nn.Module, batch: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gathered projections of both ends of every pair, and their gathered node ids."""
        device = self.ctx.device
        view_a, view_b, node_a, node_b = batch[:4]
        x = torch.cat([view_a, view_b]).to(device, non_blocking=True).float().div_(255.0)
        za, zb = (distributed.gather(z) for z in project(net, x, device, self.ctx.fast))
        return za, zb, distributed.gather(node_a.to(device)), distributed.gather(node_b.to(device))

    def triplet(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Triplet loss (mean over pairs), negatives drawn from the gathered batch."""
        za, zb, node_a, node_b = self.embed(net, batch)
        margin = self.ctx.params.triplet_margin
        same = same_node_mask(node_a, node_b).to(self.ctx.device)
        negatives = choose_negatives(za, zb, margin, self.negatives, same)
        return triplet_loss(za, zb, zb[negatives], margin, reduction="mean")

    def groco(
        self, net: nn.Module, batch: tuple[torch.Tensor, ...], views: torch.Tensor
    ) -> torch.Tensor:
        """GroCo of the 2B ends of B mined pairs: each anchor's group is its partner plus every
        other batch item on the same node or one mined edge away; its negative candidates are
        the other mined items and the step's image ``views`` ``[2N, D]`` (a mined graph can
        link most of a small batch, which would leave nothing to sort against)."""
        p = self.ctx.params
        za, zb, node_a, node_b = self.embed(net, batch)
        positives = graph_positive_mask(torch.cat([node_a, node_b]).cpu(), self.edges)
        mined = torch.cat([za, zb])
        m, n = len(mined), len(views)
        mask = torch.zeros(m + n, m + n, dtype=torch.bool, device=mined.device)
        mask[:m, :m] = positives.to(mined.device)
        return p.groco_mined_weight * groco_loss(
            torch.cat([mined, views]),
            mask,
            k=p.groco_k,
            steepness=p.groco_steepness,
            max_positives=p.groco_max_positives,
            anchors=m,
        )


class Triplet(Method):
    """The triplet loss on the mined set alone: ``--pairs``, or ``--data`` when that is one."""

    reads_pairs = True

    def __init__(self, ctx: Context, data: Path, pairs: Path | None) -> None:
        super().__init__(ctx, data, pairs)
        self.pairs = MinedPairs(ctx, pairs or data, data)
        self.images_from = Path(pairs or data)  # triplet trains on the mined patches only
        self.lineage["data"] = read_dataset_manifest(data)["content_hash"]
        if self.pairs.hash is not None:
            self.lineage["pairs"] = self.pairs.hash
        self.train_images = len(self.pairs.patches)
        self.steps_per_epoch = len(self.pairs.set) // self.params.batch_size
        self.metrics["mined_pairs"] = len(self.pairs.set)

    def batches(self, epoch: int) -> DataLoader[Any]:
        return self.pairs.loader(epoch)

    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        return self.pairs.triplet(net, batch), len(batch[0])


def _needs_pairs(ctx: Context, pairs: Path | None) -> Path:
    if pairs is None:
        raise ConfigError(f"pretrain.method={ctx.params.method} needs --pairs (a mined dataset)")
    return pairs


class SimclrTriplet(Simclr):
    """SimCLR on the images plus ``triplet_weight`` × the triplet loss of one batch of mined
    pairs per step; an epoch is one pass over the images."""

    reads_pairs = True

    def __init__(self, ctx: Context, data: Path, pairs: Path | None) -> None:
        self.pairs = MinedPairs(ctx, _needs_pairs(ctx, pairs), data)
        super().__init__(ctx, data, pairs)
        if self.pairs.hash is not None:
            self.lineage["pairs"] = self.pairs.hash
        self.metrics["mined_pairs"] = len(self.pairs.set)
        self.pair_batches: Iterator[Any] = iter(())

    def batches(self, epoch: int) -> DataLoader[Any]:
        images = super().batches(epoch)
        self.pair_batches = forever(self.pairs.loader(epoch, salt=7))
        return images

    def mined_term(self, net: nn.Module, views: torch.Tensor) -> torch.Tensor:
        return self.params.triplet_weight * self.pairs.triplet(net, next(self.pair_batches))

    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        z1, z2, n = self.embed(net, batch)
        loss = self.objective(z1, z2)
        return loss + self.mined_term(net, torch.cat([z1, z2])), n


class GrocoMined(SimclrTriplet, Groco):
    """GroCo on the images plus GroCo on one batch of mined pairs with graph positives."""

    def mined_term(self, net: nn.Module, views: torch.Tensor) -> torch.Tensor:
        return self.pairs.groco(net, next(self.pair_batches), views)
