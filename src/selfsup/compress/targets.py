"""Which weights are pruned: every conv/linear weight except the first convolution's.

The first convolution maps 3 input channels and holds a negligible share of the parameters, but
pruning it removes whole colour/edge filters that every later layer depends on; SSVI keeps it
dense and, so that the two pruning methods compress the same tensors, so does magnitude pruning.
BatchNorm parameters and biases stay dense too (they are ~0.5% of the ConvNet).
"""

from __future__ import annotations

from torch import nn


def prunable_modules(encoder: nn.Module) -> list[tuple[str, nn.Conv2d | nn.Linear]]:
    """``(qualified name, module)`` of the conv/linear layers whose ``weight`` is pruned."""
    layers: list[tuple[str, nn.Conv2d | nn.Linear]] = [
        (name, module)
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    return [(n, m) for n, m in layers if not (isinstance(m, nn.Conv2d) and n == layers[0][0])]


def prunable_weight_names(encoder: nn.Module) -> list[str]:
    """State-dict keys of the pruned weights, in module order."""
    return [f"{name}.weight" for name, _ in prunable_modules(encoder)]


def weight_density(encoder: nn.Module) -> float:
    """Share of nonzero entries among the prunable weights (1.0 for a dense encoder)."""
    total = nonzero = 0
    for _, module in prunable_modules(encoder):
        weight = module.weight
        total += weight.numel()
        nonzero += int((weight != 0).sum())
    return nonzero / total if total else 1.0
