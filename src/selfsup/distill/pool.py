"""The model pool of KRR-ST: small ConvNets at different stages of training on (X_s, Y_s).

The kernel of the outer loss comes from one pool model per step. A single fixed model would let
the images over-fit its features; models trained for different numbers of steps on the current
synthetic set give kernels from early to late training, which is what the distilled set must
serve (it will be used to train a fresh network). Each member counts its MSE steps; one that
reaches ``max_steps`` (T) is re-initialised **and its counter reset to 0**.

The reference implementation (github.com/db-Lee/selfsup_dd, ``model_pool.py``) re-initialises the
model but does not reset its counter (and skips the training step when it re-initialises), so
after its first T steps a member is re-initialised at *every* later update, never trained again,
and the pool degenerates into freshly initialised networks. :meth:`ModelPool.step` resets it
(tested in tests/unit/test_krr_st.py); see docs/distill.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.models import Encoder


class PoolModel(nn.Module):
    """A feature extractor ``f`` (the kernel's features) and a linear head onto the targets."""

    def __init__(self, encoder: Encoder, target_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, target_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(images))
        return out


@dataclass
class Member:
    """One pool model, its optimiser and the MSE steps it has taken since its initialisation."""

    model: PoolModel
    optimizer: torch.optim.Optimizer
    steps: int = 0


class ModelPool:
    """``size`` models from ``factory``, each re-initialised after ``max_steps`` MSE steps.

    ``generator`` seeds everything the pool draws (initial weights, warm-up lengths, which model
    an outer step uses), so a run is reproducible without touching the global RNG's sequence.
    """

    def __init__(
        self,
        factory: Callable[[], PoolModel],
        size: int,
        max_steps: int,
        lr: float,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.factory = factory
        self.max_steps = max_steps
        self.lr = lr
        self.generator = generator
        self.device = device
        self.resets = 0
        self.members = [self._fresh() for _ in range(size)]

    def _fresh(self) -> Member:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.factory().to(self.device)
        return Member(model, torch.optim.Adam(model.parameters(), lr=self.lr))

    def warm_up(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        """Train each member for a random number of steps in [1, T] (T: re-initialised, 0)."""
        for index in range(len(self.members)):
            count = int(torch.randint(1, self.max_steps + 1, (1,), generator=self.generator))
            for _ in range(count):
                self.step(index, images, targets)

    def sample(self) -> int:
        """Index of a uniformly drawn member (the one an outer step uses)."""
        return int(torch.randint(0, len(self.members), (1,), generator=self.generator))

    def features(self, index: int, images: torch.Tensor) -> torch.Tensor:
        """``f(images)`` of member ``index`` (train mode, as it is being trained).

        The member's weights do not require grad here: the outer loss differentiates only with
        respect to the images and targets.
        """
        model = self.members[index].model
        model.train()
        for weight in model.parameters():
            weight.requires_grad_(False)
        try:
            out: torch.Tensor = model.encoder(images)
        finally:
            for weight in model.parameters():
                weight.requires_grad_(True)
        return out

    def step(self, index: int, images: torch.Tensor, targets: torch.Tensor) -> float:
        """One MSE step of member ``index`` on (images, targets); re-initialise it at T steps.

        Returns the step's loss. ``images`` and ``targets`` are used detached.
        """
        member = self.members[index]
        member.model.train()
        loss = F.mse_loss(member.model(images.detach()), targets.detach())
        member.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        member.optimizer.step()
        member.steps += 1
        if member.steps >= self.max_steps:
            self.members[index] = self._fresh()  # a new Member: steps back to 0
            self.resets += 1
        return float(loss.detach())
