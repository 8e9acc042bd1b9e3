"""RankMe (Garrido et al., 2023): the effective rank of an embedding matrix.

A collapsed self-supervised model maps every image to (nearly) the same direction; RankMe
detects that without labels, as the exponential of the entropy of the normalised singular values:
1 for total collapse, up to min(N, D) for embeddings that use every dimension equally. Because it
needs no labels it is the one metric reported for unlabeled data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from selfsup.errors import SelfsupError

RANKME_EPS = 1e-7


@dataclass(frozen=True)
class RankMeResult:
    """The RankMe value and the number of rows ``samples`` of the matrix it was computed on."""

    value: float
    samples: int


def sample_rows(matrix: torch.Tensor, max_rows: int, seed: int) -> torch.Tensor:
    """At most ``max_rows`` rows of ``matrix``, a seeded uniform subset when there are more.

    RankMe grows with N until N exceeds the embedding's rank, so N is capped (and recorded) to keep
    values comparable between datasets of different sizes.
    """
    if len(matrix) <= max_rows:
        return matrix
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(matrix), generator=generator)[:max_rows]
    return matrix[idx.to(matrix.device)]


@torch.no_grad()
def rankme(
    embeddings: torch.Tensor, *, max_samples: int = 25_600, seed: int = 0, eps: float = RANKME_EPS
) -> RankMeResult:
    """RankMe of ``embeddings`` ``[N, K]``: ``exp(-Σ p_k log p_k)``, ``p_k = σ_k / ‖σ‖₁ + ε``.

    The SVD runs in float64: float32 singular values of a near-collapsed matrix carry noise of
    ~1e-7·σ_max, the same size as ε, which would inflate the value of a collapsed model.
    """
    if embeddings.ndim != 2 or len(embeddings) < 1 or embeddings.shape[1] < 1:
        raise SelfsupError(f"RankMe needs a non-empty [N,K] matrix, got {tuple(embeddings.shape)}")
    rows = sample_rows(embeddings, max_samples, seed).double()
    sigma = torch.linalg.svdvals(rows)
    total = sigma.sum()
    if not bool(torch.isfinite(total)) or float(total) == 0.0:
        raise SelfsupError("RankMe is undefined for an all-zero or non-finite embedding matrix")
    p = sigma / total + eps
    entropy = -(p * p.log()).sum()
    return RankMeResult(value=math.exp(float(entropy)), samples=len(rows))
