"""The SimCLR projection head: Linear → BN → ReLU → Linear.

The loss is computed on the projection; the representation that stages downstream use is the
encoder output before it (the head discards augmentation-relevant information, Chen et al. 2020).
"""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """MLP projector ``in_dim → hidden → out_dim``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(features)
        return out
