"""``selfsup distill``: learn m synthetic images and targets that stand in for the training set.

Teacher ``g_T`` (a selfsup encoder) → targets ``g_T(x)`` of a seeded real subset; ``X_s`` starts
as a random real ``m``-subset and ``Y_s`` as its teacher targets; each outer step draws a real
batch and a pool model, takes an Adam step on ``(X_s, Y_s)`` along the KRR loss
(:mod:`selfsup.distill.krr`), then one MSE step of that pool model on the updated set
(:mod:`selfsup.distill.pool`). The output directory (written atomically, manifest last) holds::

    images.pt    float32 [m,3,H,W] in [0,1]   (the learnt images; not quantised to uint8)
    targets.pt   float32 [m,D]                (the learnt targets, D = teacher width)
    preview.png  the first 64 images, 8 a row, upscaled (nearest-neighbour) and numbered
    metrics.json outer loss (mean of the first/last tenth of steps), pool resets, wall time
    loss.csv     the outer loss per step
    manifest.json kind "distilled", params, teacher and data hashes, shapes

``selfsup pretrain --method distilled --data <this dir>`` trains a fresh encoder on it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from PIL.Image import Image

from selfsup.config import DistillParams, PretrainParams
from selfsup.data.shards import load_split, read_dataset_manifest
from selfsup.distill.format import save_distilled
from selfsup.distill.krr import krr_loss
from selfsup.distill.pool import ModelPool, PoolModel
from selfsup.errors import ConfigError
from selfsup.models import build_encoder
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.observe.image_grid import labelled_grid, to_hwc_uint8, write_png
from selfsup.observe.progress import Progress
from selfsup.store import (
    atomic_directory,
    atomic_write_json,
)
from selfsup.train.accel import resolve_device

log = logging.getLogger("selfsup.distill")


def real_subset(images: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """A seeded random subset of ``size`` rows (all of them when ``size`` is None or larger)."""
    if size is None or size >= len(images):
        return images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return images[order[:size]]


def initial_indices(num_real: int, num_images: int, seed: int) -> torch.Tensor:
    """The real images ``X_s`` starts from: a random subset seeded by ``seed`` alone (so a
    baseline can train on exactly the images the distillation started from)."""
    order = torch.randperm(num_real, generator=torch.Generator().manual_seed(seed))
    return order[:num_images]


def outer_loss(
    pool: ModelPool,
    index: int,
    synthetic: torch.Tensor,
    targets: torch.Tensor,
    real: torch.Tensor,
    real_targets: torch.Tensor,
    ridge: float,
) -> torch.Tensor:
    """The KRR loss under member ``index``'s features; no gradient through ``f(x_real)``."""
    with torch.no_grad():
        real_features = pool.features(index, real)
    return krr_loss(pool.features(index, synthetic), real_features, targets, real_targets, ridge)


def distill(
    teacher: torch.nn.Module,
    real_images: torch.Tensor,
    params: DistillParams,
    pool_encoder: PretrainParams,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Run KRR-ST on uint8 ``real_images``; returns (images, targets, metrics)."""
    if params.num_images > len(real_images):
        raise ConfigError(
            f"distill.num_images={params.num_images} exceeds the {len(real_images)} real images"
        )
    if params.real_batch_size > len(real_images):
        raise ConfigError(
            f"distill.real_batch_size={params.real_batch_size} exceeds the "
            f"{len(real_images)} real images"
        )
    generator = torch.Generator().manual_seed(params.seed)
    teacher = teacher.to(device)
    real_targets = embed(teacher, real_images.to(device)).float()
    start = initial_indices(len(real_images), params.num_images, params.seed)
    synthetic = real_images[start].to(device).float().div(255.0).requires_grad_(True)
    targets = real_targets[start].clone().requires_grad_(True)
    optimizer = torch.optim.Adam(
        [
            {"params": [synthetic], "lr": params.image_lr},
            {"params": [targets], "lr": params.target_lr},
        ]
    )
    target_dim = int(real_targets.shape[1])

    def factory() -> PoolModel:
        # The pool sees the teacher's data: it normalises the same way.
        normalization = getattr(teacher, "normalization", None)
        return PoolModel(build_encoder(pool_encoder, normalization), target_dim)

    pool = ModelPool(
        factory, params.pool_size, params.pool_max_steps, params.pool_lr, generator, device
    )
    pool.warm_up(synthetic.detach(), targets.detach())
    losses: list[float] = []
    started = time.perf_counter()
    with Progress(params.outer_steps, "distill") as bar:
        for _ in range(params.outer_steps):
            batch = torch.randint(
                0, len(real_images), (params.real_batch_size,), generator=generator
            )
            real = real_images[batch].to(device).float().div_(255.0)
            index = pool.sample()
            loss = outer_loss(
                pool, index, synthetic, targets, real, real_targets[batch], params.ridge
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite KRR loss at outer step {len(losses)}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if params.clamp_images:
                with torch.no_grad():
                    synthetic.clamp_(0.0, 1.0)
            pool.step(index, synthetic, targets)
            losses.append(float(loss.detach()))
            bar.step(loss=losses[-1])
    seconds = time.perf_counter() - started
    window = max(1, len(losses) // 10)
    metrics: dict[str, Any] = {
        "outer_loss": losses,
        "outer_loss_first": sum(losses[:window]) / window,
        "outer_loss_last": sum(losses[-window:]) / window,
        "outer_loss_window": window,
        "pool_resets": pool.resets,
        "outer_seconds": seconds,
        "outer_steps_per_second": len(losses) / seconds if seconds > 0 else 0.0,
        "num_images": params.num_images,
        "real_images": len(real_images),
        "target_dim": target_dim,
    }
    return synthetic.detach().cpu(), targets.detach().cpu(), metrics


PREVIEW_IMAGES = 64


def preview(images: torch.Tensor) -> Image:
    """The first 64 learnt images (float ``[m,3,H,W]`` in [0,1]), 8 a row, each numbered by its
    index in ``images.pt``."""
    shown = to_hwc_uint8(images[:PREVIEW_IMAGES])
    title = f"distilled images: the first {len(shown)} of {len(images)}"
    columns = min(8, max(len(shown), 1))
    return labelled_grid(shown, [f"#{i}" for i in range(len(shown))], columns, title=title)


def run(dataset: Path, model: Path, *, params: DistillParams, out: Path) -> dict[str, Any]:
    """Distill ``dataset``'s train split with the teacher encoder ``model`` into ``out``.

    The pool models are the project's ConvNet at ``pool_width`` channels. Returns the metrics
    also written to ``out/metrics.json``.
    """
    model_dir, data_dir = Path(model), Path(dataset)
    data_manifest = read_dataset_manifest(data_dir)
    teacher, teacher_manifest = load_encoder(model_dir)
    real = real_subset(load_split(data_dir, "train").images, params.real_images, params.seed)
    device = resolve_device(params.device)
    torch.manual_seed(params.seed)
    pool_encoder = PretrainParams(encoder="convnet", convnet_width=params.pool_width)
    began = time.perf_counter()
    images, targets, metrics = distill(teacher, real, params, pool_encoder, device)
    metrics["wall_seconds"] = time.perf_counter() - began
    log.info(
        "distilled %d images: KRR loss %.4f → %.4f (mean of %d steps), %d pool resets",
        len(images),
        metrics["outer_loss_first"],
        metrics["outer_loss_last"],
        metrics["outer_loss_window"],
        metrics["pool_resets"],
    )
    losses: list[float] = metrics.pop("outer_loss")
    with atomic_directory(out) as tmp:
        (tmp / "loss.csv").write_text(
            "step,loss\n" + "".join(f"{i + 1},{v:.6f}\n" for i, v in enumerate(losses))
        )
        write_png(preview(images), tmp / "preview.png")
        atomic_write_json(tmp / "metrics.json", metrics)
        save_distilled(
            tmp,
            images,
            targets,
            params.model_dump(),
            teacher=teacher_manifest["content_hash"],
            data=data_manifest["content_hash"],
            # The student trains on these images: it normalises as the teacher's data does.
            **{k: data_manifest[k] for k in ("normalization", "grayscale") if k in data_manifest},
            metrics={
                k: metrics[k] for k in ("outer_loss_first", "outer_loss_last", "wall_seconds")
            },
        )
    return metrics
