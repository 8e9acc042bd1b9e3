"""The optimiser and learning-rate schedule every training method uses."""

from __future__ import annotations

import torch
from torch import nn

from selfsup.config import PretrainParams
from selfsup.train.lars import LARS
from selfsup.train.schedule import warmup_cosine


def optimizer(params: PretrainParams, model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimiser over ``model``'s parameters; lr scales linearly with the batch
    size (base: 256)."""
    lr = params.lr * params.batch_size / 256
    weights = list(model.parameters())
    if params.optimizer == "adamw":
        return torch.optim.AdamW(weights, lr=lr, weight_decay=params.weight_decay)
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            weights, lr=lr, momentum=params.momentum, weight_decay=params.weight_decay
        )
    return LARS(weights, lr=lr, momentum=params.momentum, weight_decay=params.weight_decay)


def scheduler(
    optim: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay, stepped once per optimisation step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optim, lambda step: warmup_cosine(step, total_steps, warmup_steps)
    )
