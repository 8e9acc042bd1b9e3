"""BYOL (Grill et al. 2020): predict a slow-moving target network's projection of the other view.

The online network (encoder → projector → predictor) regresses the target network's projection
of the other view of the same image; the target (a copy of encoder → projector) gets no gradient
and follows the online weights by an exponential moving average::

    loss = ℓ(p₁, sg(z'₂)) + ℓ(p₂, sg(z'₁)),   ℓ(p, z) = mean_i (2 − 2 cos(p_i, z_i))
    ξ ← τ_k ξ + (1 − τ_k) θ,                  τ_k = 1 − (1 − τ_base)(cos(π k / K) + 1) / 2

after optimiser step k of K. No negatives: under DDP the loss is that of the gathered batch, and
since DDP keeps the online weights equal on every rank, so is every rank's EMA update.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.models import Encoder, ProjectionHead
from selfsup.train import accel as gpu
from selfsup.train import distributed
from selfsup.train.methods.base import Model, SimclrNet, project
from selfsup.train.methods.views import Simclr


def byol_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetric normalised MSE of predictions ``p`` ``[N, D]`` against the target projections
    ``z`` ``[N, D]`` of the *other* view (no gradient flows into ``z``)."""

    def term(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)).mean()

    return term(p1, z2) + term(p2, z1)


def target_momentum(step: int, total: int, base: float) -> float:
    """τ at step ``step`` of ``total``: ``base`` at 0, rising along a cosine to 1 at ``total``."""
    return 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``ξ ← τ ξ + (1 − τ) θ`` for every parameter pair (buffers: the target's own)."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(tau).add_(o.detach(), alpha=1 - tau)


class Byol(Simclr):
    """BYOL on two views of each image (data and views as SimCLR's)."""

    def build(self, encoder: Encoder) -> Model:
        model = super().build(encoder)
        projector = model.state["projector"]
        p = self.params
        predictor = ProjectionHead(p.projector_out, p.byol_predictor_hidden, p.projector_out)
        predictor = predictor.to(self.ctx.device)
        self.online = SimclrNet(encoder, projector)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        gpu.prepare_model(self.target, self.ctx.fast)
        self.total_steps = self.steps_per_epoch * p.epochs
        net = SimclrNet(encoder, nn.Sequential(projector, predictor))
        state = {**model.state, "predictor": predictor, "target": self.target}
        return Model(net, state)

    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        x = self.two_views(batch)
        device, fast = self.ctx.device, self.ctx.fast
        p1, p2 = (distributed.gather(p) for p in project(net, x, device, fast))
        with torch.no_grad():
            z1, z2 = (distributed.gather(z) for z in project(self.target, x, device, fast))
        return byol_loss(p1, p2, z1, z2), x.shape[0] // 2

    def after_step(self, step: int) -> None:
        tau = target_momentum(step, self.total_steps, self.params.byol_momentum_base)
        ema_update(self.target, self.online, tau)
