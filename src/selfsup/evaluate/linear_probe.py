"""Linear probe: multinomial logistic regression on frozen, standardised features.

The probe is convex, so full-batch L-BFGS from a zero start reaches (nearly) the same optimum on
every run: the score reflects the features, not the seed or a learning-rate schedule, and needs
no hyper-parameters beyond the L2 strength and an iteration budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: ``softmax(((x - mean) / std) @ weight.T + bias)``."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    final_loss: float

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, C]`` of raw (unstandardised) ``features`` ``[N, D]``."""
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0]:
            raise SelfsupError(
                f"probe expects [N,{self.mean.shape[0]}] features, got {tuple(features.shape)}"
            )
        x = (features.to(self.mean.dtype) - self.mean) / self.std
        return x @ self.weight.T + self.bias

    def predict_proba(self, features: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[N, C]`` (rows sum to 1)."""
        return torch.softmax(self.logits(features), dim=1)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Most probable class per row ``[N]``."""
        return self.logits(features).argmax(dim=1)


def _standardisation(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Train mean/std; a constant feature (a dead ReLU in a random encoder) keeps std 1."""
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False)
    return mean, torch.where(std > 1e-12, std, torch.ones_like(std))


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    epochs: int = 100,
    weight_decay: float = 1e-4,
) -> LinearProbe:
    """Fit the probe on ``features`` ``[N, D]`` and int ``labels`` ``[N]`` (full batch).

    Minimises ``mean cross-entropy + weight_decay / 2 · ‖W‖²`` (bias not decayed) with at most
    ``epochs`` L-BFGS iterations (strong-Wolfe line search). Computed in float64 on the
    features' device: deterministic and free of float32 stalls near the optimum.
    """
    if features.ndim != 2 or labels.shape != (features.shape[0],) or len(features) == 0:
        raise SelfsupError(
            f"probe needs non-empty [N,D] features and [N] labels, got "
            f"{tuple(features.shape)} and {tuple(labels.shape)}"
        )
    if bool((labels < 0).any()):
        raise SelfsupError("probe labels contain unlabeled (-1) samples")
    classes = int(labels.max()) + 1 if num_classes is None else num_classes
    if int(labels.max()) >= classes:
        raise SelfsupError(f"probe label {int(labels.max())} ≥ num_classes={classes}")
    x = features.double()
    mean, std = _standardisation(x)
    x = (x - mean) / std
    y = labels.long()
    weight = torch.zeros(classes, x.shape[1], dtype=x.dtype, device=x.device, requires_grad=True)
    bias = torch.zeros(classes, dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=epochs,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def objective() -> torch.Tensor:
        return F.cross_entropy(x @ weight.T + bias, y) + 0.5 * weight_decay * weight.pow(2).sum()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    with torch.enable_grad():
        optimizer.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        final = float(objective())
    return LinearProbe(
        mean=mean, std=std, weight=weight.detach(), bias=bias.detach(), final_loss=final
    )
