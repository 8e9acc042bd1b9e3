"""``distilled``: a fresh encoder regresses the learnt targets of a distilled set (KRR-ST).

The encoder and a linear head onto the target width fit ``Y_s`` for the images ``X_s`` of a
``selfsup distill`` output by MSE; the head is discarded, as SimCLR's projector is. No
augmentation: the targets were learnt for exactly these images. The batch is clipped to m and
an epoch's last, smaller batch is kept (m is small); a lone leftover is dropped (BatchNorm needs
two samples).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.distill.format import load_distilled
from selfsup.models import Encoder
from selfsup.train import accel as gpu
from selfsup.train.methods.base import Context, Method, Model, SimclrNet


class Distilled(Method):
    """MSE to the targets of the distilled set at ``data``."""

    def __init__(self, ctx: Context, data: Path, pairs: Path | None) -> None:
        super().__init__(ctx, data, pairs)
        self.images, self.targets, manifest = load_distilled(data)
        self.lineage["data"] = manifest["content_hash"]
        self.batch = min(self.params.batch_size, len(self.images))
        self.train_images = len(self.images)
        self.steps_per_epoch = math.ceil(len(self.images) / self.batch)

    def build(self, encoder: Encoder) -> Model:
        head = nn.Linear(encoder.out_dim, self.targets.shape[1]).to(self.ctx.device)
        return Model(SimclrNet(encoder, head), {"encoder": encoder, "head": head})

    def batches(self, epoch: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.params.seed)
        for _ in range(epoch):  # epoch e's order is the e-th draw of one seeded stream
            torch.randperm(len(self.images), generator=generator)
        order = torch.randperm(len(self.images), generator=generator)
        job = self.ctx.job
        chunks = [order[i : i + self.batch] for i in range(0, len(order), self.batch)]
        return [c[job.rank :: job.world_size] for c in chunks if len(c) >= 2]

    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        device, fast = self.ctx.device, self.ctx.fast
        with gpu.autocast(fast, device):
            out = net(gpu.layout(self.images[batch].to(device), fast))
        return F.mse_loss(out.float(), self.targets[batch].to(device)), len(batch)
