"""``selfsup pretrain``: train an encoder with one of the registered methods, with checkpoints.

The method (``pretrain.method``, looked up in :data:`selfsup.train.methods.METHODS`) reads its
data and says which batches an epoch has and what its loss on one is; this loop does the rest:
seeding, optimiser and schedule, checkpoint/resume, DDP, metrics and the model directory.

Determinism is per epoch: the shuffling and every augmentation draw of epoch ``e`` come from
generators seeded with ``(seed, e)``, and every module the method keeps, the optimiser and the
schedule are checkpointed at the end of each epoch. A run killed after epoch ``e`` and resumed
therefore ends with the same weights as a run that was never interrupted (tested on CPU).

Under ``torchrun`` (:mod:`selfsup.train.distributed`) every rank trains on its share of each
global batch (``batch_size`` is global), the losses see the gathered outputs of all ranks, DDP
averages the gradients, every rank resumes from the same checkpoint, and only rank 0 writes
checkpoints and the model directory. The GPU options (bf16, channels-last, compile, views made on
the device) are resolved per device by :mod:`selfsup.train.accel`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup.config import PretrainParams
from selfsup.errors import ConfigError
from selfsup.models import build_encoder
from selfsup.models.artifact import data_normalization, write_model
from selfsup.models.encoders import Normalization
from selfsup.observe.progress import Progress
from selfsup.train import accel as gpu
from selfsup.train import distributed, optim
from selfsup.train.checkpoint import Mirror, load_checkpoint, save_checkpoint
from selfsup.train.loaders import epoch_seed, rank_seed
from selfsup.train.methods import METHODS, Context, Method, Model

log = logging.getLogger("selfsup.pretrain")


def run_key(params: PretrainParams, data_hash: str) -> str:
    """Identifies one training run: its params and the exact data it reads."""
    blob = json.dumps({"params": params.model_dump(), "data": data_hash}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(
    dataset: Path,
    pairs: Path | None = None,
    *,
    params: PretrainParams,
    out: Path,
    checkpoints: Path | None = None,
    resume: bool = False,
    mirror: str | None = None,
) -> dict[str, Any]:
    """Pretrain an encoder on ``dataset``; write the model directory ``out``.

    ``pairs`` (a ``selfsup mine`` output) is read by the methods on mined pairs only (``triplet``
    reads ``dataset`` when it is not given); the others ignore it, so one command line serves
    every method. ``dataset`` is a prepared dataset, or for ``distilled`` a distilled set.

    Checkpoints go to ``<checkpoints>/<run key>/last.pt`` after every epoch (``checkpoints``
    defaults to ``<out>.ckpt``); the run key hashes the params and the data's content hash, so
    ``resume`` continues only a run of exactly this training and otherwise starts afresh — which
    makes ``--resume`` safe to leave on in ``dvc.yaml``. ``mirror`` (a store URI) also keeps each
    checkpoint there under the run key and, with ``resume``, starts from its copy: what a retried
    pipeline task on a fresh disk resumes from. Returns the metrics also written to
    ``out/metrics.json``: loss per epoch, images/s per epoch, wall time. Under ``torchrun`` the
    metrics are returned on every rank and the files written by rank 0.
    """
    job = distributed.from_env()
    if job.enabled and params.batch_size % job.world_size:
        raise ConfigError(
            f"pretrain.batch_size={params.batch_size} (global) is not divisible by the "
            f"{job.world_size} ranks of this job"
        )
    device = distributed.device_for(job, gpu.resolve_device(params.device))
    with distributed.process_group(job, device):
        ctx = Context(params, job, device, gpu.resolve(params, device))
        return _run(ctx, Path(dataset), pairs, Path(out), checkpoints, resume, mirror)


@dataclass
class _Training:
    """One run's method, model and optimisation state."""

    method: Method
    model: Model
    net: nn.Module  # the step's module: model.net, wrapped for DDP and compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    history: dict[str, list[float]] = field(
        default_factory=lambda: {"loss_per_epoch": [], "images_per_second": [], "epoch_seconds": []}
    )

    def state(self, epoch: int, params: PretrainParams) -> dict[str, Any]:
        modules = {name: m.state_dict() for name, m in self.model.state.items()}
        return {
            "epoch": epoch,
            "params": params.model_dump(),
            **modules,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
        }

    def load(self, state: dict[str, Any]) -> int:
        """Restore a checkpoint; returns the epoch to continue from."""
        for name, module in self.model.state.items():
            module.load_state_dict(state[name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = state["history"]
        return int(state["epoch"]) + 1


def _training(ctx: Context, method: Method, normalization: Normalization) -> _Training:
    params = ctx.params
    torch.manual_seed(params.seed)
    model = method.build(build_encoder(params, normalization).to(ctx.device))
    gpu.prepare_model(model.net, ctx.fast)
    optimizer = optim.optimizer(params, model.net)
    steps = method.steps_per_epoch
    warmup = math.ceil(params.warmup_epochs * steps)
    scheduler = optim.scheduler(optimizer, steps * params.epochs, warmup)
    return _Training(method, model, model.net, optimizer, scheduler)


def _train_epoch(training: _Training, ctx: Context, epoch: int) -> tuple[float, int]:
    """One pass over the method's batches of ``epoch``; returns (mean loss per image, images
    seen by all ranks)."""
    params, method = ctx.params, training.method
    # Augmentations drawn in this process (num_workers=0, or views made on the device).
    torch.manual_seed(rank_seed(epoch_seed(params.seed, epoch), ctx.job.rank))
    desc = f"epoch {epoch + 1}/{params.epochs}"
    training.net.train()
    total, images, seen = 0.0, 0, 0
    with Progress(method.steps_per_epoch, desc) as bar:
        started = time.perf_counter()
        for batch in method.batches(epoch):
            loss, n = method.loss(training.net, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at {desc} step {images}")
            training.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            training.optimizer.step()
            training.scheduler.step()
            method.after_step(training.scheduler.last_epoch - 1)
            total += loss.item() * n
            images += n
            seen += n * ctx.job.world_size
            bar.step(loss=loss.item(), img_s=seen / (time.perf_counter() - started))
    return total / max(images, 1), seen


def _run(
    ctx: Context,
    dataset: Path,
    pairs: Path | None,
    out: Path,
    checkpoints: Path | None,
    resume: bool,
    mirror: str | None,
) -> dict[str, Any]:
    params, job = ctx.params, ctx.job
    kind = METHODS[params.method]
    if pairs is not None and not kind.reads_pairs:
        log.info(
            "pretrain.method=%s does not train on mined pairs: %s is not read", params.method, pairs
        )
        pairs = None
    if params.progressive_resize is not None and not kind.makes_views:
        log.info(
            "pretrain.method=%s trains on no augmented views: pretrain.progressive_resize is"
            " not used",
            params.method,
        )
    method = kind(ctx, dataset, pairs)
    root = Path(checkpoints) if checkpoints else out.with_name(out.name + ".ckpt")
    key = run_key(params, ":".join(method.lineage.values()))
    checkpoint, copy = root / key, Mirror(mirror) if mirror else None
    normalization, grayscale = data_normalization(method.images_from)
    if grayscale and (params.augment.jitter_strength > 0 or params.augment.grayscale_p > 0):
        log.warning(
            "%s is grayscale: colour jitter's saturation and hue and random grayscale "
            "(pretrain.augment.grayscale_p=%s) do nothing there; jitter's brightness and "
            "contrast still apply, and keep the two views from matching by intensity alone",
            method.images_from,
            params.augment.grayscale_p,
        )
    training = _training(ctx, method, normalization)
    start_epoch = 0
    if resume and copy is not None and job.is_main and copy.pull(key, checkpoint):
        log.info("pulled checkpoint %s from %s", key, mirror)
    distributed.barrier()  # every rank resumes from the pulled checkpoint
    state = load_checkpoint(checkpoint) if resume else None
    if state is not None:
        if state["params"] != params.model_dump():
            raise ConfigError(
                f"checkpoint in {checkpoint} was made with other params; "
                "resume needs the same params (or start without --resume)"
            )
        start_epoch = training.load(state)
        log.info("resumed from %s after epoch %d", checkpoint / "last.pt", start_epoch)
    # After loading: DDP broadcasts rank 0's weights, which equal every rank's here anyway.
    wrapped = distributed.wrap(training.net, job, ctx.device, params.sync_batchnorm)
    training.net = gpu.compiled(wrapped, ctx.fast)

    history = training.history
    for epoch in range(start_epoch, params.epochs):
        started = time.perf_counter()
        loss, seen = _train_epoch(training, ctx, epoch)
        seconds = time.perf_counter() - started
        history["loss_per_epoch"].append(loss)
        history["images_per_second"].append(seen / seconds)
        history["epoch_seconds"].append(seconds)
        log.info(
            "epoch %d/%d loss %.4f %.0f images/s", epoch + 1, params.epochs, loss, seen / seconds
        )
        if job.is_main:
            saved = save_checkpoint(checkpoint, training.state(epoch, params))
            if copy is not None:
                copy.push(key, saved)
        distributed.barrier()  # no rank runs ahead of the last checkpoint

    metrics: dict[str, Any] = {
        **history,
        "final_loss": history["loss_per_epoch"][-1],
        "mean_images_per_second": sum(history["images_per_second"])
        / len(history["images_per_second"]),
        "wall_seconds": sum(history["epoch_seconds"]),
        "epochs": params.epochs,
        "train_images": method.train_images,
        "method": params.method,
        "world_size": job.world_size,
        **method.metrics,
    }
    if not job.is_main:
        distributed.barrier()  # returns once rank 0 has written the model directory
        return metrics
    encoder = training.model.state["encoder"]
    write_model(out, encoder, params, metrics, **method.lineage)  # type: ignore[arg-type]
    # Checkpoints of other run keys stay: another run (other params or data) sharing this
    # --checkpoints folder may still be going, or resume later.
    distributed.barrier()
    return metrics
