"""GroCo, Group Ordering Constraints (Shvetsova et al., "Learning by Sorting", ICCV 2023).

For each anchor the cosine similarities to its K hardest negatives and to its positives are laid
out as v = [negatives ascending ; positives ascending] (the order a perfect model would give) and
sorted by a differentiable sorting network (PyPI ``diffsort``, odd-even, Cauchy). Its relaxed
permutation P (``sorted = v @ P``: ``P[i, j]`` is the mass of input i at rank j) gives each input's
probability q_i = Σ_{j<K} P_ij of landing in the bottom K ranks; the loss is the binary
cross-entropy of q against 1 for negatives and 0 for positives. Only positives ranked below some
negative are penalised, so well-separated groups cost (almost) nothing: that is the difference
from NT-Xent, which keeps pushing every pair.

The loss is a pure function of the (already gathered) batch: positives are given as a boolean
mask, so two views per image, mined graph positives or both fit the same code. Similarities are
``anchor · stop_grad(other)`` (gradients flow through the anchor only), in fp32.
"""

from __future__ import annotations

import functools

import diffsort
import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=64)
def sorter(size: int, steepness: float, device: str) -> diffsort.DiffSortNet:
    """The odd-even Cauchy sorting network for ``size`` inputs on ``device``.

    Built once per (size, steepness, device): diffsort keeps its network matrices in plain Python
    lists, which ``nn.Module.to`` would not move, so they are created on the target device.
    """
    return diffsort.DiffSortNet(
        "odd_even", size, device=device, steepness=steepness, art_lambda=0.25, distribution="cauchy"
    )


def soft_permutation(values: torch.Tensor, steepness: float) -> torch.Tensor:
    """Relaxed permutation ``[A, n, n]`` sorting each row of ``values`` ascending (``v @ P``)."""
    net = sorter(int(values.shape[1]), float(steepness), str(values.device))
    _, permutation = net(values)
    return permutation  # type: ignore[no-any-return]


def sorting_loss(
    negatives: torch.Tensor, positives: torch.Tensor, steepness: float
) -> torch.Tensor:
    """GroCo loss per anchor ``[A]`` from similarities ``negatives [A,K]`` and ``positives [A,P]``.

    Both are pre-ordered ascending here (the ground-truth order then is the identity).
    """
    k = negatives.shape[1]
    values = torch.cat([negatives.sort(dim=1).values, positives.sort(dim=1).values], dim=1).float()
    permutation = soft_permutation(values, steepness)
    bottom = permutation[:, :, :k].sum(dim=2).clamp(0.0, 1.0)  # q_i: mass in the bottom K ranks
    target = torch.zeros_like(bottom)
    target[:, :k] = 1.0
    return F.binary_cross_entropy(bottom, target, reduction="none").mean(dim=1)


def same_image_mask(n: int, views: int = 2, device: torch.device | None = None) -> torch.Tensor:
    """``[V·N, V·N]`` positives of views stacked as ``[view 1 of all images; view 2; ...]``."""
    image = torch.arange(n, device=device).repeat(views)
    return image[:, None] == image[None, :]


def groco_loss(
    z: torch.Tensor,
    positives: torch.Tensor,
    k: int = 10,
    steepness: float = 20.0,
    max_positives: int = 8,
    anchors: int | None = None,
) -> torch.Tensor:
    """Mean GroCo loss over the anchors of ``z`` ``[M, D]`` with a positive and a negative.

    ``positives[i, j]`` marks j as a positive of anchor i (the diagonal is ignored); every other
    row is a negative candidate, and the K most similar are used (fewer when some anchor has
    fewer candidates: in a small mined batch the graph can link most items). An anchor with
    more than ``max_positives`` positives keeps its least similar ones (the sorting network's
    size, and so its cost, grows with the group). Anchors are grouped by positive count so
    that each group is one batched sort. ``anchors``: only the first that many rows are anchors
    (the rest are candidates only: ``groco+mined`` adds the image views as negatives of the
    mined patches).
    """
    m = z.shape[0]
    if z.ndim != 2 or positives.shape != (m, m):
        raise ValueError(
            f"z must be [M, D] and positives [M, M], got {tuple(z.shape)}, {tuple(positives.shape)}"
        )
    if k < 1 or max_positives < 1:
        raise ValueError(f"k and max_positives must be >= 1, got {k}, {max_positives}")
    a = m if anchors is None else anchors
    unit = F.normalize(z.float(), dim=1)
    similarity = unit[:a] @ unit.detach().T  # gradient through the anchor side only
    eye = torch.eye(m, dtype=torch.bool, device=z.device)[:a]
    positive = positives[:a].to(z.device) & ~eye
    candidates = ~positive & ~eye
    usable = positive.any(dim=1) & candidates.any(dim=1)  # something to order on both sides
    if not bool(usable.any()):
        raise ValueError("no anchor in the batch has both a positive and a negative")
    k = min(k, int(candidates[usable].sum(dim=1).min()))  # a mined batch may be mostly one group
    hardest = similarity.masked_fill(~candidates, float("-inf")).topk(k, dim=1).values
    counts = positive.sum(dim=1).clamp(max=max_positives).masked_fill(~usable, 0)
    losses = []
    for count in sorted(set(counts.tolist()) - {0}):
        rows = counts == count
        own = similarity[rows].masked_fill(~positive[rows], float("inf"))
        least_similar = own.sort(dim=1).values[:, :count]
        losses.append(sorting_loss(hardest[rows], least_similar, steepness))
    return torch.cat(losses).mean()
