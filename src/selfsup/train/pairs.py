"""Mined positive pairs as a training set for the Triplet-Siamese objective.

Reads a dataset directory written by ``selfsup mine``: its ``train`` split holds the patches and
its graph the edges; every edge (intra, inter, transitive) is a positive pair. Each item is one
augmented view of each end and the two node indices (so negatives can avoid the pair's own nodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from selfsup.data.shards import load_split
from selfsup.errors import DataError
from selfsup.mining.graph import positive_pairs, read_graph

if TYPE_CHECKING:  # importing torchvision costs ~2 s of every stage's start-up
    from torchvision.transforms import v2


class PairViews(Dataset[tuple[torch.Tensor, torch.Tensor, int, int]]):
    """(view of A, view of B, A, B) for each positive pair (A, B) of node indices."""

    def __init__(self, images: torch.Tensor, pairs: torch.Tensor, transform: v2.Compose) -> None:
        self.images = images
        self.pairs = pairs
        self.transform = transform

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        a, b = (int(v) for v in self.pairs[index])
        return self.transform(self.images[a]), self.transform(self.images[b]), a, b


def load_pairs(mined: Path, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches ``uint8 [N,3,P,P]`` and positive pairs ``int64 [E,2]`` of a mined dataset."""
    images = load_split(mined, "train").images
    pairs = torch.from_numpy(positive_pairs(read_graph(mined)))
    if len(pairs) < batch_size:
        raise DataError(
            f"{mined} holds {len(pairs)} mined pairs, fewer than pretrain.batch_size="
            f"{batch_size}: mine more video or lower the batch size"
        )
    return images, pairs


def same_node_mask(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[B,B]``: True where pair j's positive is one of pair i's own nodes (not a negative)."""
    return (b[None, :] == a[:, None]) | (b[None, :] == b[:, None])


def graph_positive_mask(nodes: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``[B,B]``: True where batch items i and j are the same node or linked by a mined edge.

    ``nodes`` are the node indices of a batch, ``edges`` the graph's ``int64 [E,2]`` pairs (either
    direction counts). GroCo uses it as the positive set of ``groco+mined``: an anchor's mined
    neighbours that happen to be in the batch join its group of positives.
    """
    nodes = nodes.long()
    span = int(max(int(nodes.max()), int(edges.max()) if len(edges) else 0)) + 1
    keys = torch.cat([edges[:, 0] * span + edges[:, 1], edges[:, 1] * span + edges[:, 0]])
    linked = torch.isin(nodes[:, None] * span + nodes[None, :], keys.to(nodes.device))
    return linked | (nodes[:, None] == nodes[None, :])
