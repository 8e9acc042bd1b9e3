"""Triplet-Siamese loss of Transitive Invariance (Wang, He, Gupta, ICCV 2017).

Features are L2-normalised and compared by D(a,b) = 1 − cos(a,b). For a positive pair (a, p) and a
negative n, the loss is max(0, D(a,p) − D(a,n) + m) + max(0, D(a,p) − D(p,n) + m): both ends of
the pair must be closer to each other than either is to the negative, by the margin m.
Negatives come from the batch (the other pairs' members): half the pairs get their hardest one
(largest loss, i.e. the one that violates the margin most), the other half a random one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-wise 1 − cos of already-normalised rows."""
    return 1.0 - (x * y).sum(dim=1)


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float,
    reduction: str = "sum",
) -> torch.Tensor:
    """Σ_n [max(0, D(a,p) − D(a,n) + m) + max(0, D(a,p) − D(p,n) + m)] over rows ``[B,D]``.

    ``reduction="mean"`` divides by B (the training loop uses it so the step size does not
    depend on the batch size).
    """
    if anchor.shape != positive.shape or anchor.shape != negative.shape or anchor.ndim != 2:
        raise ValueError(
            f"anchor/positive/negative must share a [B,D] shape, got "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    a, p, n = (F.normalize(t, dim=1) for t in (anchor, positive, negative))
    d_ap = _distance(a, p)
    per_pair = F.relu(d_ap - _distance(a, n) + margin) + F.relu(d_ap - _distance(p, n) + margin)
    if reduction == "sum":
        return per_pair.sum()
    if reduction == "mean":
        return per_pair.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


@torch.no_grad()
def choose_negatives(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    margin: float,
    generator: torch.Generator,
    same: torch.Tensor | None = None,
) -> torch.Tensor:
    """Index into ``positive`` of the negative for each pair ``i`` (never ``i`` itself).

    Candidates for pair ``i`` are the positives of the other pairs, minus those marked in the
    boolean ``same[i, j]`` (e.g. the same node). A random half of the pairs takes the hardest
    candidate (largest triplet loss), the other half a uniformly random one.
    """
    batch = anchor.shape[0]
    if batch < 2:
        raise ValueError("need at least 2 pairs in a batch to draw negatives from it")
    a, p = F.normalize(anchor, dim=1), F.normalize(positive, dim=1)
    d_ap = (1.0 - (a * p).sum(1))[:, None]
    loss = F.relu(d_ap - (1.0 - a @ p.T) + margin) + F.relu(d_ap - (1.0 - p @ p.T) + margin)
    allowed = ~torch.eye(batch, dtype=torch.bool, device=anchor.device)
    if same is not None:
        allowed &= ~same
    allowed[allowed.sum(1) == 0] = ~torch.eye(batch, dtype=torch.bool, device=anchor.device)[
        allowed.sum(1) == 0
    ]  # a pair with no allowed candidate falls back to "anything but itself"
    hardest = loss.masked_fill(~allowed, -1.0).argmax(1)
    noise = torch.rand(batch, batch, generator=generator).to(anchor.device)
    random = noise.masked_fill(~allowed, -1.0).argmax(1)
    use_hard = torch.randperm(batch, generator=generator).to(anchor.device) < batch // 2
    return torch.where(use_hard, hardest, random)
