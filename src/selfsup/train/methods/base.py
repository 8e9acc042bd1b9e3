"""What a training method is to the loop: the data it reads, the modules it trains, the batches
of an epoch and its loss on one batch.

The loop (:mod:`selfsup.train.stage`) seeds, builds the encoder, asks :meth:`Method.build` for the
rest, and then for every epoch iterates :meth:`Method.batches`, backpropagates
:meth:`Method.loss` and calls :meth:`Method.after_step`; it checkpoints every module in
:attr:`Model.state`. A method never checks ``params.method``: the registry picked it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.config import PretrainParams
from selfsup.models import Encoder, ProjectionHead
from selfsup.train import accel as gpu
from selfsup.train import distributed


@dataclass(frozen=True)
class Context:
    """Where a method runs: its params, this process's place in the job, the device and the GPU
    options it supports."""

    params: PretrainParams
    job: distributed.Dist = distributed.SINGLE
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    fast: gpu.Accel = gpu.EAGER


@dataclass
class Model:
    """``net``: the encoder and trained heads (one forward; what the optimiser steps and DDP
    wraps); ``state``: every module a checkpoint keeps, by name (trained or not)."""

    net: nn.Module
    state: dict[str, nn.Module] = field(default_factory=dict)


class SimclrNet(nn.Module):
    """Encoder then a head: the one module DDP and ``torch.compile`` wrap."""

    def __init__(self, encoder: Encoder, projector: nn.Module) -> None:
        super().__init__()
        self.encoder, self.projector = encoder, projector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.projector(self.encoder(images))
        return out


def project(
    net: nn.Module, x: torch.Tensor, device: torch.device, fast: gpu.Accel
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward a [2B,...] batch of two stacked views; fp32 outputs of each half (the loss is
    computed outside autocast)."""
    with gpu.autocast(fast, device):
        z = net(gpu.layout(x, fast))
    first, second = z.float().chunk(2)
    return first, second


class Method(ABC):
    """One training method. The constructor reads its data (raising clear errors) and sets:

    * ``lineage``: content hashes of what it trains on, ``{"data": ..., ["pairs": ...]}`` (the
      model manifest's lineage and the checkpoint run key);
    * ``train_images``, ``steps_per_epoch`` (the lr schedule's unit) and ``metrics`` (extra
      entries of the stage's metrics);
    * ``images_from``: the dataset whose recorded statistics the encoder normalises with (the
      images it trains on).
    """

    reads_pairs: ClassVar[bool] = False
    """Whether ``--pairs`` (a mined dataset) is read; other methods ignore it."""
    makes_views: ClassVar[bool] = False
    """Whether it trains on augmented views (which ``pretrain.progressive_resize`` sizes)."""

    def __init__(self, ctx: Context, data: Path, pairs: Path | None) -> None:
        self.ctx, self.params = ctx, ctx.params
        self.lineage: dict[str, str] = {}
        self.images_from = Path(data)
        self.train_images = 0
        self.steps_per_epoch = 0
        self.metrics: dict[str, Any] = {}

    def projector(self, encoder: Encoder) -> ProjectionHead:
        """The SimCLR projection head on ``encoder``, on the device."""
        p = self.params
        head = ProjectionHead(encoder.out_dim, p.projector_hidden, p.projector_out)
        return head.to(self.ctx.device)

    def build(self, encoder: Encoder) -> Model:
        """The model around a freshly seeded ``encoder`` (already on the device)."""
        projector = self.projector(encoder)
        return Model(SimclrNet(encoder, projector), {"encoder": encoder, "projector": projector})

    @abstractmethod
    def batches(self, epoch: int) -> Iterable[Any]:
        """This rank's batches of ``epoch`` (seeded by the epoch: the same after a resume)."""

    @abstractmethod
    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """The loss of one batch through ``net`` (the step's wrapped ``Model.net``), and the
        number of images this rank contributed."""

    def after_step(self, step: int) -> None:
        """Called after optimiser step ``step`` (0-based, counted over the whole run)."""
        return None
