"""``selfsup pretrain --method distilled``: train a fresh encoder on a distilled set (KRR-ST).

The encoder and a linear head onto the target width regress the learnt targets ``Y_s`` of the
learnt images ``X_s`` (MSE); the head is discarded, as SimCLR's projector is. No augmentation:
the targets were learnt for exactly these images, and a crop or flip would change the image but
not its target. The run uses ``pretrain``'s encoder, optimiser, lr, weight decay, epochs, warm-up
and batch size (clipped to m; the last, smaller batch of an epoch is kept since m is small). It is
short (m images), so it keeps no checkpoints: ``--resume`` starts it afresh.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.config import PretrainParams
from selfsup.distill.stage import load_distilled
from selfsup.models import Encoder, build_encoder
from selfsup.models.artifact import save_encoder
from selfsup.store import atomic_directory, atomic_write_json
from selfsup.train.pretrain import _optimizer, _write_loss_csv, resolve_device
from selfsup.train.schedule import warmup_cosine

log = logging.getLogger("selfsup.pretrain")


def train_on_targets(
    images: torch.Tensor, targets: torch.Tensor, params: PretrainParams, device: torch.device
) -> tuple[Encoder, dict[str, list[float]]]:
    """Fit ``build_encoder(params)`` + a linear head to ``targets`` by MSE; returns the encoder
    and the per-epoch history. ``images`` are float in [0, 1] (or uint8, scaled here)."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    y = targets.float()
    torch.manual_seed(params.seed)
    encoder = build_encoder(params).to(device)
    head = nn.Linear(encoder.out_dim, y.shape[1]).to(device)
    optimizer = _optimizer(params, [encoder, head])
    batch = min(params.batch_size, len(x))
    steps_per_epoch = math.ceil(len(x) / batch)
    total = steps_per_epoch * params.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(step, total, math.ceil(params.warmup_epochs * steps_per_epoch)),
    )
    generator = torch.Generator().manual_seed(params.seed)
    history: dict[str, list[float]] = {
        "loss_per_epoch": [],
        "images_per_second": [],
        "epoch_seconds": [],
    }
    encoder.train()
    head.train()
    for epoch in range(params.epochs):
        started = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        total_loss = 0.0
        for start in range(0, len(x), batch):
            chosen = order[start : start + batch]
            if len(chosen) < 2:  # BatchNorm needs two samples; a lone leftover is dropped
                continue
            loss = F.mse_loss(head(encoder(x[chosen].to(device))), y[chosen].to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} in epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(chosen)
        seconds = time.perf_counter() - started
        history["loss_per_epoch"].append(total_loss / len(x))
        history["images_per_second"].append(len(x) / seconds)
        history["epoch_seconds"].append(seconds)
    return encoder, history


def run(data_dir: Path, params: PretrainParams, out: Path) -> dict[str, Any]:
    """Pretrain on the distilled directory ``data_dir``; write the model directory ``out``."""
    images, targets, manifest = load_distilled(data_dir)
    device = resolve_device(params.device)
    encoder, history = train_on_targets(images, targets, params, device)
    metrics: dict[str, Any] = {
        **history,
        "final_loss": history["loss_per_epoch"][-1],
        "mean_images_per_second": sum(history["images_per_second"]) / params.epochs,
        "wall_seconds": sum(history["epoch_seconds"]),
        "epochs": params.epochs,
        "train_images": len(images),
        "method": params.method,
    }
    log.info(
        "distilled pretraining: final MSE %.4f on %d images", metrics["final_loss"], len(images)
    )
    with atomic_directory(out) as tmp:
        atomic_write_json(tmp / "metrics.json", metrics)
        _write_loss_csv(tmp / "loss.csv", history)
        save_encoder(
            tmp,
            encoder.cpu(),
            params,
            data=manifest["content_hash"],
            metrics={
                k: metrics[k] for k in ("final_loss", "wall_seconds", "epochs", "train_images")
            },
        )
    return metrics
