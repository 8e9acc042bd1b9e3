"""Expected calibration error (Naeini et al. 2015; Guo et al. 2017) and reliability-diagram bins.

Accuracy says how often the probe is right; ECE says whether its confidence can be trusted: the
gap between confidence and accuracy, averaged over equal-width confidence bins weighted by
their share of samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin ``(lower, upper]``: its sample count, accuracy and mean confidence.

    ``accuracy`` and ``confidence`` are NaN for an empty bin (nothing to plot).
    """

    lower: float
    upper: float
    count: int
    accuracy: float
    confidence: float


@dataclass(frozen=True)
class Calibration:
    """ECE (0..1) and the per-bin data of a reliability diagram."""

    ece: float
    bins: list[ReliabilityBin]


def calibration_from_confidences(
    confidences: torch.Tensor, correct: torch.Tensor, bins: int = 10
) -> Calibration:
    """ECE = Σ_b (|B_b|/N)·|acc(B_b) − conf(B_b)| over ``bins`` equal-width bins of ``[0, 1]``.

    ``confidences`` ``[N]`` are top-label probabilities; ``correct`` ``[N]`` says whether the top
    label was right. Bin b holds confidences in ``(b/bins, (b+1)/bins]`` (0 goes to the first).
    Computed in float64 so the ECE is exact to rounding.
    """
    if bins < 1:
        raise SelfsupError(f"ECE needs at least one bin, got {bins}")
    if confidences.ndim != 1 or correct.shape != confidences.shape:
        raise SelfsupError(
            f"ECE needs [N] confidences and [N] correctness, got "
            f"{tuple(confidences.shape)} and {tuple(correct.shape)}"
        )
    conf = confidences.detach().double().cpu()
    hit = correct.detach().double().cpu()
    n = len(conf)
    index = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)
    counts = torch.bincount(index, minlength=bins).double()
    conf_sum = torch.zeros(bins, dtype=torch.float64).scatter_add_(0, index, conf)
    hit_sum = torch.zeros(bins, dtype=torch.float64).scatter_add_(0, index, hit)
    ece = float((hit_sum - conf_sum).abs().sum() / n) if n else float("nan")
    table = []
    for b in range(bins):
        count = int(counts[b])
        table.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                count=count,
                accuracy=float(hit_sum[b] / count) if count else float("nan"),
                confidence=float(conf_sum[b] / count) if count else float("nan"),
            )
        )
    return Calibration(ece=ece, bins=table)


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 10
) -> Calibration:
    """ECE of class ``probabilities`` ``[N, C]`` against true ``labels`` ``[N]`` (top-label)."""
    if probabilities.ndim != 2 or labels.shape != (probabilities.shape[0],):
        raise SelfsupError(
            f"ECE needs [N,C] probabilities and [N] labels, got "
            f"{tuple(probabilities.shape)} and {tuple(labels.shape)}"
        )
    confidence, predicted = probabilities.max(dim=1)
    return calibration_from_confidences(confidence, predicted == labels, bins)
