"""The baselines a deletion request is measured against, all on the same data in the same run.

* **no-op**: the original model, unchanged (the upper bound of what is remembered).
* **fine-tune**: the encoder and head trained further with cross-entropy on the *labelled*
  remaining data (``finetune_epochs``, BatchNorm statistics frozen); forgetting comes only from
  catastrophic interference.
* **retrain** (the gold standard): at this repo's scale, "retraining from scratch" means exactly
  the recipe that made the original model, on the remaining data only — a fresh SimCLR pretrain
  (:func:`selfsup.train.stage.run`) with the original model's own pretrain params (same
  encoder, epochs, image budget ``max_images``; ``retrain_epochs`` can shorten it) followed by a
  linear head fitted with the repo's linear probe on the remaining data's features.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.config import PretrainParams, UnlearnParams
from selfsup.data.shards import Split, write_dataset
from selfsup.evaluate.linear_probe import fit_linear_probe
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.observe.progress import Progress
from selfsup.train import stage as pretrain
from selfsup.train.accel import resolve_device
from selfsup.train.loaders import as_unit_float
from selfsup.unlearn.head import head_from_probe


def fit_head(
    encoder: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    params: UnlearnParams,
) -> nn.Linear:
    """A linear head fitted (L-BFGS probe) on ``encoder``'s features of labelled ``images``."""
    features = embed(encoder, images, params.batch_size)
    probe = fit_linear_probe(
        features,
        labels.to(features.device),
        num_classes=num_classes,
        epochs=params.head_iterations,
        weight_decay=params.head_weight_decay,
    )
    return head_from_probe(probe).to(features.device)


def finetune(
    encoder: nn.Module,
    head: nn.Linear,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: UnlearnParams,
    device: torch.device,
) -> tuple[nn.Module, nn.Linear]:
    """Copies of ``encoder`` and ``head`` after supervised fine-tuning on the remaining data."""
    # BatchNorm keeps the original running statistics (eval mode), as in LAF: in train mode the
    # batch statistics of a small fine-tuning set shift every feature and break the fitted head.
    model = copy.deepcopy(encoder).to(device).eval().requires_grad_(True)
    tuned = copy.deepcopy(head).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([*model.parameters(), *tuned.parameters()], lr=params.finetune_lr)
    generator = torch.Generator().manual_seed(params.seed + 1)
    steps = params.finetune_epochs * -(-len(images) // params.batch_size)
    with Progress(steps, "unlearn: fine-tune baseline") as progress:
        for _ in range(params.finetune_epochs):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(images), params.batch_size):
                idx = order[start : start + params.batch_size]
                x = as_unit_float(images[idx].to(device))
                loss = F.cross_entropy(tuned(model(x)), labels[idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                progress.step(loss=loss.item())
    return model.requires_grad_(False), tuned.requires_grad_(False)


def retrain(
    remaining: Split,
    class_names: list[str],
    pretrain_params: PretrainParams,
    params: UnlearnParams,
) -> tuple[nn.Module, nn.Linear, dict[str, float]]:
    """SSL pretrain from scratch on ``remaining`` + a probe head; returns them and pretrain's
    metrics (the model is trained in a temporary directory that is removed afterwards)."""
    if params.retrain_epochs is not None:
        update = {
            "epochs": params.retrain_epochs,
            "warmup_epochs": min(pretrain_params.warmup_epochs, params.retrain_epochs),
        }
        pretrain_params = pretrain_params.model_copy(update=update)
    with tempfile.TemporaryDirectory(prefix="selfsup-retrain-") as tmp:
        data_dir = Path(tmp) / "data"
        write_dataset(
            data_dir,
            {"train": remaining},
            source="unlearn-remaining",
            class_names=class_names,
            params={},
        )
        metrics = pretrain.run(
            data_dir,
            params=pretrain_params,
            out=Path(tmp) / "model",
            checkpoints=Path(tmp) / "ckpt",
        )
        encoder, _ = load_encoder(Path(tmp) / "model")
    device = resolve_device(pretrain_params.device)
    encoder = encoder.to(device).requires_grad_(False)
    head = fit_head(
        encoder,
        remaining.images.to(device),
        remaining.labels.to(device),
        len(class_names),
        params,
    )
    return encoder, head, {"pretrain_seconds": float(metrics["wall_seconds"])}
