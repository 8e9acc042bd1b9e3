"""LARS (You et al., 2017): SGD with a per-layer trust ratio, the optimiser of large-batch SimCLR.

PyTorch ships none; lightly and solo-learn each carry their own. This one follows the SimCLR
reference: for weights with ``ndim > 1`` the update is scaled by η·‖w‖/(‖g‖ + wd·‖w‖); biases and
BatchNorm parameters get neither weight decay nor adaptation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class LARS(torch.optim.Optimizer):
    """SGD + momentum with layer-wise adaptive rate scaling."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if p.ndim > 1:
                    grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.norm(p), torch.linalg.norm(grad)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        group["trust_coefficient"] * w_norm / g_norm,
                        torch.ones_like(w_norm),
                    )
                    grad = grad.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss
