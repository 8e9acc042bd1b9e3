"""Weighted k-nearest-neighbour classification of frozen features (the InstDisc protocol).

Wu et al. (2018) score a query by the cosine similarities ``s`` of its ``k`` nearest neighbours in
a bank of labelled training features, each neighbour voting for its class with weight
``exp(s / τ)``. It needs no training, so it measures the representation rather than an optimiser,
which is why every SimCLR-style CIFAR report quotes it (k=200, τ=0.07).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class KnnResult:
    """Predicted class per query ``[Q]`` and each class's vote share ``[Q, C]`` (rows sum to 1).

    ``k`` is the neighbour count actually used (the requested one clipped to the bank size).
    """

    predictions: torch.Tensor
    scores: torch.Tensor
    k: int


def _check_inputs(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor) -> None:
    """Fail with a readable message rather than a shape error deep inside a matmul."""
    if bank.ndim != 2 or queries.ndim != 2 or bank.shape[1] != queries.shape[1]:
        raise SelfsupError(
            f"kNN needs [N,D] bank and [Q,D] queries, got {tuple(bank.shape)} and "
            f"{tuple(queries.shape)}"
        )
    if bank_labels.shape != (bank.shape[0],):
        raise SelfsupError(
            f"bank labels {tuple(bank_labels.shape)} do not match the bank {tuple(bank.shape)}"
        )
    if len(bank) == 0:
        raise SelfsupError("kNN needs a non-empty bank of labelled features")
    if bool((bank_labels < 0).any()):
        raise SelfsupError("kNN bank contains unlabeled (-1) samples")


@torch.no_grad()
def knn_classify(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    *,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.07,
    batch_size: int = 512,
) -> KnnResult:
    """Classify ``queries`` [Q,D] by a similarity-weighted vote of their ``k`` nearest bank rows.

    Queries are processed ``batch_size`` at a time so memory stays at ``batch_size × N`` floats.
    Weights are computed as ``exp((s - s_max) / τ)`` per query: the same vote up to a positive
    factor (so the same prediction and vote shares) without overflowing float32 for small ``τ``.
    """
    _check_inputs(bank, bank_labels, queries)
    if k < 1 or temperature <= 0 or batch_size < 1:
        raise SelfsupError(
            f"kNN needs k ≥ 1, temperature > 0, batch_size ≥ 1; got {k}, "
            f"{temperature}, {batch_size}"
        )
    classes = int(bank_labels.max()) + 1 if num_classes is None else num_classes
    if int(bank_labels.max()) >= classes:
        raise SelfsupError(f"bank label {int(bank_labels.max())} ≥ num_classes={classes}")
    k = min(k, len(bank))
    bank_n = F.normalize(bank.float(), dim=1)
    labels = bank_labels.long()
    predictions, scores = [], []
    for start in range(0, len(queries), batch_size):
        query_n = F.normalize(queries[start : start + batch_size].float(), dim=1)
        sims, idx = (query_n @ bank_n.T).topk(k, dim=1)
        weights = ((sims - sims[:, :1]) / temperature).exp()
        votes = torch.zeros(len(query_n), classes, dtype=weights.dtype, device=weights.device)
        votes.scatter_add_(1, labels[idx], weights)
        votes /= votes.sum(dim=1, keepdim=True)
        predictions.append(votes.argmax(dim=1))
        scores.append(votes)
    if not predictions:
        return KnnResult(torch.empty(0, dtype=torch.long), torch.empty(0, classes), k)
    return KnnResult(torch.cat(predictions), torch.cat(scores), k)


def top1_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction (0..1) of predictions equal to the label; NaN for no samples."""
    if len(labels) == 0:
        return float("nan")
    return float((predictions == labels).double().mean())


def per_class_accuracy(
    predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> list[float]:
    """Top-1 accuracy (0..1) within each true class; NaN for a class with no samples.

    Shows which classes the representation separates: a mean accuracy hides a collapsed class.
    """
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise SelfsupError(
            f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]"
        )
    correct = (predictions == labels).double()
    totals = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.zeros(num_classes, dtype=torch.float64).scatter_add_(0, labels, correct)
    return [float(h / t) if t > 0 else float("nan") for h, t in zip(hits, totals, strict=True)]


def confusion_matrix(
    predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> list[list[int]]:
    """Counts ``[true class][predicted class]`` (rows: the truth), as plain ints.

    What Kubeflow's ClassificationMetrics shows: which classes a probe confuses with which.
    """
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise SelfsupError(f"labels must lie in [0, {num_classes})")
    cells = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return [[int(c) for c in row] for row in cells.reshape(num_classes, num_classes)]
