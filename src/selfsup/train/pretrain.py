"""``selfsup pretrain``: SimCLR, Triplet-Siamese on mined pairs, or both, with checkpoints/resume.

``method``: ``simclr`` (NT-Xent on two views of each image), ``triplet`` (the Transitive
Invariance loss on the positive pairs of a mined dataset, negatives from the batch) or
``simclr+triplet`` (each step adds ``triplet_weight`` × the triplet loss of a batch of mined pairs
to the SimCLR loss of a batch of images; an epoch is one pass over the images), or ``distilled``
(MSE to the targets of a ``selfsup distill`` output: :mod:`selfsup.train.distilled`). GroCo, its
top-k NT-Xent control, GroCo + mined graph positives and G-SimCLR batching: see docs/methods.md
(losses in :mod:`selfsup.train.objectives`, batching in :mod:`selfsup.train.gsimclr`).

Determinism is per epoch: the shuffling and every augmentation draw of epoch ``e`` come from
generators seeded with ``(seed, e)``, and the model/optimiser/schedule state is checkpointed at the
end of each epoch. A run killed after epoch ``e`` and resumed therefore ends with the same weights
as a run that was never interrupted (tested on CPU).

Under ``torchrun`` (:mod:`selfsup.train.distributed`) every rank trains on its share of each
global batch (``batch_size`` is global), the losses see the gathered projections of all ranks, DDP
averages the gradients, every rank resumes from the same checkpoint, and only rank 0 writes
checkpoints and the model directory. The GPU options (bf16, channels-last, compile, views made on
the device) are resolved per device by :mod:`selfsup.train.accel`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from selfsup.config import PretrainParams
from selfsup.data.augment import TwoViews, simclr_transform
from selfsup.data.augment_batched import BatchTwoViews, Images
from selfsup.data.shards import Split, load_split, read_dataset_manifest
from selfsup.errors import ConfigError
from selfsup.losses import choose_negatives, triplet_loss
from selfsup.models import Encoder, ProjectionHead, build_encoder
from selfsup.models.artifact import save_encoder
from selfsup.observe.progress import StepProgress
from selfsup.store import atomic_directory, atomic_write_json
from selfsup.train import accel as gpu
from selfsup.train import distributed
from selfsup.train.checkpoint import load_checkpoint, save_checkpoint
from selfsup.train.gsimclr import DistinctLabelBatches, pseudo_label_split
from selfsup.train.lars import LARS
from selfsup.train.objectives import MINED_METHODS, MIXED_METHODS, mined_groco_loss, view_loss
from selfsup.train.pairs import PairViews, graph_positive_mask, load_pairs, same_node_mask
from selfsup.train.schedule import warmup_cosine

log = logging.getLogger("selfsup.pretrain")


def run_key(params: PretrainParams, data_hash: str) -> str:
    """Identifies one training run: its params and the exact data it reads."""
    blob = json.dumps({"params": params.model_dump(), "data": data_hash}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def _rank_seed(seed: int, rank: int) -> int:
    """Per-rank augmentation seeds (rank 0 keeps the single-process seed)."""
    return seed ^ (rank << 40)


class SimclrNet(nn.Module):
    """Encoder then projection head: the one module DDP and ``torch.compile`` wrap."""

    def __init__(self, encoder: Encoder, projector: ProjectionHead) -> None:
        super().__init__()
        self.encoder, self.projector = encoder, projector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.projector(self.encoder(images))
        return out


def _optimizer(params: PretrainParams, modules: list[nn.Module]) -> torch.optim.Optimizer:
    """The configured optimiser; lr scales linearly with batch size (base: 256)."""
    lr = params.lr * params.batch_size / 256
    weights = [p for m in modules for p in m.parameters()]
    if params.optimizer == "adamw":
        return torch.optim.AdamW(weights, lr=lr, weight_decay=params.weight_decay)
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            weights, lr=lr, momentum=params.momentum, weight_decay=params.weight_decay
        )
    return LARS(weights, lr=lr, momentum=params.momentum, weight_decay=params.weight_decay)


def _training_split(data_dir: Path, params: PretrainParams) -> Split:
    split = load_split(data_dir, "train")
    if params.max_images is not None and params.max_images < len(split):
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(params.seed))
        split = Split(
            split.images[order[: params.max_images]], split.labels[order[: params.max_images]]
        )
    return split


def _training_images(data_dir: Path, params: PretrainParams) -> torch.Tensor:
    images = _training_split(data_dir, params).images
    if len(images) < params.batch_size:
        raise ConfigError(
            f"pretrain.batch_size={params.batch_size} exceeds the {len(images)} "
            "training images: lower the batch size or use more data"
        )
    return images


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("pretrain.device=cuda but no CUDA device is visible; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _loader_options(
    n: int,
    params: PretrainParams,
    epoch: int,
    device: torch.device,
    job: distributed.Dist,
    salt: int = 0,
) -> dict[str, Any]:
    """Shuffled, drop-last batches of this rank's share of the global batch; pinned on CUDA."""
    seed = _epoch_seed(params.seed, epoch) + salt
    shard = distributed.sampler(n, job, seed)
    return {
        "batch_size": params.batch_size // job.world_size,
        "shuffle": shard is None,
        "sampler": shard,
        "drop_last": True,
        "num_workers": params.num_workers,
        "generator": torch.Generator().manual_seed(_rank_seed(seed, job.rank)),
        "pin_memory": device.type == "cuda",  # batches cross to the GPU asynchronously
        "persistent_workers": False,
    }


def view_loader(
    images: torch.Tensor,
    params: PretrainParams,
    epoch: int,
    device: torch.device,
    job: distributed.Dist = distributed.SINGLE,
    batches: Sampler[list[int]] | None = None,
) -> DataLoader[Any]:
    """Pairs of views of shuffled images; the augmentation backend decides where views are made
    (per image in ``Dataset.__getitem__``, or per batch in ``collate_fn``); both run in workers.
    With ``augment.placement=device`` it yields the uint8 images and the step makes the views.
    ``batches`` replaces the shuffled batches (G-SimCLR's distinct-pseudo-label batches, global;
    each rank takes its share of every batch)."""
    size = int(images.shape[-1])
    options = _loader_options(len(images), params, epoch, device, job)
    if batches is not None:
        for key in ("batch_size", "shuffle", "sampler", "drop_last", "generator"):
            del options[key]
        options["batch_sampler"] = distributed.shard_batches(batches, job)
    if params.augment.placement == "device":
        return DataLoader(Images(images), **options)
    if params.augment.backend == "kornia":
        collate = BatchTwoViews(size, params.augment)
        return DataLoader(Images(images), collate_fn=collate, **options)
    return DataLoader(TwoViews(images, simclr_transform(size, params.augment)), **options)


def as_unit_float(views: torch.Tensor) -> torch.Tensor:
    """uint8 views (torchvision backend) → [0, 1]; float views (kornia) pass through."""
    return views.float().div_(255.0) if views.dtype == torch.uint8 else views.float()


def pair_loader(
    dataset: PairViews,
    params: PretrainParams,
    epoch: int,
    device: torch.device,
    salt: int = 0,
    job: distributed.Dist = distributed.SINGLE,
) -> DataLoader[Any]:
    """Shuffled batches of mined pairs (views made per image with torchvision, uint8)."""
    return DataLoader(dataset, **_loader_options(len(dataset), params, epoch, device, job, salt))


def _forever(loader: DataLoader[Any]) -> Iterator[Any]:
    """Batches of ``loader``, starting a new pass whenever one ends (pairs in a mixed run)."""
    while True:
        yield from loader


def _project(
    net: nn.Module, x: torch.Tensor, device: torch.device, fast: gpu.Accel
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward a [2B,...] batch of two stacked views; fp32 projections of each half."""
    with gpu.autocast(fast, device):
        z = net(gpu.layout(x, fast))
    first, second = z.float().chunk(2)
    return first, second


def _pair_loss(
    net: nn.Module,
    batch: tuple[torch.Tensor, ...],
    params: PretrainParams,
    device: torch.device,
    generator: torch.Generator,
    fast: gpu.Accel = gpu.EAGER,
    views: torch.Tensor | None = None,
    edges: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triplet loss (mean over pairs) of a batch of mined pairs, negatives from the (gathered)
    batch: every rank draws the same negatives from the same gathered projections
    (``groco+mined``: GroCo with the graph positives among the gathered pairs, from ``edges``,
    and the step's gathered image ``views`` as extra negatives)."""
    view_a, view_b, node_a, node_b = batch[:4]
    x = torch.cat([view_a, view_b]).to(device, non_blocking=True).float().div_(255.0)
    za, zb = (distributed.gather(z) for z in _project(net, x, device, fast))
    node_a, node_b = distributed.gather(node_a.to(device)), distributed.gather(node_b.to(device))
    if params.method == "groco+mined" and views is not None and edges is not None:
        nodes = torch.cat([node_a, node_b]).cpu()
        positives = graph_positive_mask(nodes, edges).to(device)
        return mined_groco_loss(za, zb, positives, views, params)
    negatives = choose_negatives(
        za, zb, params.triplet_margin, generator, same_node_mask(node_a, node_b).to(device)
    )
    return triplet_loss(za, zb, zb[negatives], params.triplet_margin, reduction="mean")


def _simclr_views(batch: Any, device: torch.device, views: BatchTwoViews | None) -> torch.Tensor:
    """The step's [2B,3,H,W] float views: made on ``device`` from a uint8 batch when ``views``
    is given (``augment.placement=device``), else the loader's two views moved there."""
    if views is not None:
        first, second = views.views(batch.to(device, non_blocking=True))
        return torch.cat([first, second])
    view1, view2 = batch
    return as_unit_float(torch.cat([view1, view2]).to(device, non_blocking=True))


def _train_epoch(
    net: nn.Module,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    params: PretrainParams,
    desc: str,
    device: torch.device,
    pair_batches: Iterator[Any] | None,
    negatives: torch.Generator,
    fast: gpu.Accel = gpu.EAGER,
    views: BatchTwoViews | None = None,
    world_size: int = 1,
    edges: torch.Tensor | None = None,
) -> tuple[float, int]:
    """One pass over ``loader``; returns (mean loss, images seen by all ranks).

    ``loader`` yields image view pairs (SimCLR; uint8 images when ``views`` makes them on the
    device) or, for ``method=triplet``, mined-pair batches; with ``pair_batches`` (the mixed
    methods) each step also takes one mined-pair batch (``edges``: the mined graph, for
    ``groco+mined``'s positives). Losses are computed on the projections gathered from all ranks
    (identity for one process).
    """
    net.train()
    total_loss, steps, seen = 0.0, 0, 0
    with StepProgress(len(loader), desc) as bar:
        started = time.perf_counter()
        for batch in loader:
            if params.method == "triplet":
                loss = _pair_loss(net, batch, params, device, negatives, fast)
                local = len(batch[0])
            else:
                x = _simclr_views(batch, device, views)
                z1, z2 = _project(net, x, device, fast)
                z1, z2 = distributed.gather(z1), distributed.gather(z2)
                loss = view_loss(z1, z2, params)
                local = x.shape[0] // 2
                if pair_batches is not None:
                    pair_term = _pair_loss(
                        net,
                        next(pair_batches),
                        params,
                        device,
                        negatives,
                        fast,
                        torch.cat([z1, z2]),
                        edges,
                    )
                    weight = params.triplet_weight if params.method == "simclr+triplet" else 1.0
                    loss = loss + weight * pair_term
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at {desc} step {steps}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            scheduler.step()
            total_loss += loss.item()
            steps += 1
            seen += local * world_size
            bar.step(loss=loss.item(), img_s=seen / (time.perf_counter() - started))
    return total_loss / max(steps, 1), seen


def run(
    data_dir: Path,
    params: PretrainParams,
    out: Path,
    checkpoints: Path | None = None,
    resume: bool = False,
    pairs: Path | None = None,
) -> dict[str, Any]:
    """Pretrain an encoder on ``data_dir``'s train split; write the model directory ``out``.

    ``method=triplet`` reads the mined pairs of ``pairs`` (a ``selfsup mine`` output), or of
    ``data_dir`` when ``pairs`` is not given; the mixed methods (``simclr+triplet``,
    ``groco+mined``) train on ``data_dir``'s images and ``pairs``' mined pairs; the other methods
    ignore ``pairs``, so one command line serves every method.

    Checkpoints go to ``<checkpoints>/<run key>/last.pt`` after every epoch (``checkpoints``
    defaults to ``<out>.ckpt``); the run key hashes the params and the data's content hash, so
    ``resume`` continues only a run of exactly this training and otherwise starts afresh — which
    makes ``--resume`` safe to leave on in ``dvc.yaml``. Returns the metrics also written to
    ``out/metrics.json``: loss per epoch, images/s per epoch, wall time.

    Started by ``torchrun`` (``$WORLD_SIZE`` > 1), each process trains its share of every
    global batch in one process group; the metrics are returned on every rank, the files are
    written by rank 0.
    """
    job = distributed.from_env()
    if job.enabled and params.batch_size % job.world_size:
        raise ConfigError(
            f"pretrain.batch_size={params.batch_size} (global) is not divisible by the "
            f"{job.world_size} ranks of this job"
        )
    device = distributed.device_for(job, resolve_device(params.device))
    with distributed.process_group(job, device):
        return _run(job, device, data_dir, params, out, checkpoints, resume, pairs)


def _run(
    job: distributed.Dist,
    device: torch.device,
    data_dir: Path,
    params: PretrainParams,
    out: Path,
    checkpoints: Path | None,
    resume: bool,
    pairs: Path | None,
) -> dict[str, Any]:
    out = Path(out)
    if pairs is not None and params.method not in MINED_METHODS:
        # One command line serves every method (dvc.yaml passes the mined dataset always).
        log.info(
            "pretrain.method=%s does not train on mined pairs: %s is not read", params.method, pairs
        )
        pairs = None
    if params.method == "distilled":  # a selfsup distill output, not a dataset: own loop
        from selfsup.train import distilled

        return distilled.run(data_dir, params, out)
    data_manifest = read_dataset_manifest(data_dir)
    root = Path(checkpoints) if checkpoints else out.with_name(out.name + ".ckpt")
    lineage = data_manifest["content_hash"]
    pair_set: PairViews | None = None
    edges: torch.Tensor | None = None
    gsimclr: dict[str, Any] = {}
    if params.method in MINED_METHODS:
        # triplet trains on the mined set alone: ``--pairs``, or ``--data`` when that is one.
        mined = (pairs or data_dir) if params.method == "triplet" else pairs
        if mined is None:
            raise ConfigError(f"pretrain.method={params.method} needs --pairs (a mined dataset)")
        patches, pair_index = load_pairs(mined, params.batch_size)
        edges = pair_index
        if params.max_images is not None and params.max_images < len(pair_index):
            # The pair budget: a seeded subset, as max_images is for images.
            order = torch.randperm(
                len(pair_index), generator=torch.Generator().manual_seed(params.seed)
            )
            pair_index = pair_index[order[: params.max_images]]
        if Path(mined) != Path(data_dir):
            lineage += ":" + read_dataset_manifest(mined)["content_hash"]
        images = patches if params.method == "triplet" else _training_images(data_dir, params)
        pair_set = PairViews(
            patches, pair_index, simclr_transform(patches.shape[-1], params.augment)
        )
    else:
        images = _training_images(data_dir, params)
    checkpoints = root / run_key(params, lineage)

    fast = gpu.resolve(params, device)
    if params.method == "gsimclr":
        pseudo, gsimclr = pseudo_label_split(_training_split(data_dir, params), params, device)
    torch.manual_seed(params.seed)
    encoder = build_encoder(params).to(device)
    projector = ProjectionHead(encoder.out_dim, params.projector_hidden, params.projector_out)
    projector = projector.to(device)
    net = gpu.prepare_model(SimclrNet(encoder, projector), fast)
    views = BatchTwoViews(int(images.shape[-1]), params.augment) if fast.device_views else None
    optimizer = _optimizer(params, [encoder, projector])
    steps_per_epoch = (
        len(pair_set) if params.method == "triplet" and pair_set is not None else len(images)
    ) // params.batch_size
    total_steps = steps_per_epoch * params.epochs
    warmup_steps = math.ceil(params.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps)
    )
    history: dict[str, list[float]] = {
        "loss_per_epoch": [],
        "images_per_second": [],
        "epoch_seconds": [],
    }
    start_epoch = 0
    state = load_checkpoint(checkpoints) if resume else None
    if state is not None:
        if state["params"] != params.model_dump():
            raise ConfigError(
                f"checkpoint in {checkpoints} was made with other params; "
                "resume needs the same params (or start without --resume)"
            )
        encoder.load_state_dict(state["encoder"])
        projector.load_state_dict(state["projector"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        start_epoch = int(state["epoch"]) + 1
        log.info("resumed from %s after epoch %d", checkpoints / "last.pt", start_epoch)
    # After loading: DDP broadcasts rank 0's weights, which equal every rank's here anyway.
    step_net = gpu.compiled(distributed.wrap(net, job, device, params.sync_batchnorm), fast)

    for epoch in range(start_epoch, params.epochs):
        # Augmentations drawn in this process (num_workers=0, or views made on the device).
        torch.manual_seed(_rank_seed(_epoch_seed(params.seed, epoch), job.rank))
        started = time.perf_counter()
        loader = (
            pair_loader(pair_set, params, epoch, device, job=job)
            if params.method == "triplet" and pair_set is not None
            else view_loader(
                images,
                params,
                epoch,
                device,
                job,
                DistinctLabelBatches(pseudo, params.batch_size, _epoch_seed(params.seed, epoch))
                if params.method == "gsimclr"
                else None,
            )
        )
        mixed = params.method in MIXED_METHODS and pair_set is not None
        loss, seen = _train_epoch(
            step_net,
            loader,
            optimizer,
            scheduler,
            params,
            f"epoch {epoch + 1}/{params.epochs}",
            device,
            _forever(pair_loader(pair_set, params, epoch, device, salt=7, job=job))
            if mixed and pair_set is not None
            else None,
            torch.Generator().manual_seed(_epoch_seed(params.seed, epoch) + 13),
            fast,
            views,
            job.world_size,
            edges,
        )
        seconds = time.perf_counter() - started
        history["loss_per_epoch"].append(loss)
        history["images_per_second"].append(seen / seconds)
        history["epoch_seconds"].append(seconds)
        log.info(
            "epoch %d/%d loss %.4f %.0f images/s", epoch + 1, params.epochs, loss, seen / seconds
        )
        if job.is_main:
            save_checkpoint(
                checkpoints,
                {
                    "epoch": epoch,
                    "params": params.model_dump(),
                    "encoder": encoder.state_dict(),
                    "projector": projector.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "history": history,
                },
            )
        distributed.barrier()  # no rank runs ahead of the last checkpoint

    metrics: dict[str, Any] = {
        **history,
        "final_loss": history["loss_per_epoch"][-1],
        "mean_images_per_second": sum(history["images_per_second"])
        / len(history["images_per_second"]),
        "wall_seconds": sum(history["epoch_seconds"]),
        "epochs": params.epochs,
        "train_images": len(images),
        "method": params.method,
        "world_size": job.world_size,
        **({"mined_pairs": len(pair_set)} if pair_set is not None else {}),
        **gsimclr,
    }
    if not job.is_main:
        distributed.barrier()  # returns once rank 0 has written the model directory
        return metrics
    with atomic_directory(out) as tmp:
        atomic_write_json(tmp / "metrics.json", metrics)
        _write_loss_csv(tmp / "loss.csv", history)
        save_encoder(
            tmp,
            encoder,
            params,
            data=data_manifest["content_hash"],
            metrics={
                k: metrics[k] for k in ("final_loss", "wall_seconds", "epochs", "train_images")
            },
            **({"pairs": lineage.split(":")[1]} if ":" in lineage else {}),
        )
    for stale in root.iterdir():  # checkpoints of other params/data can never be resumed
        if stale != checkpoints and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    distributed.barrier()
    return metrics


def _write_loss_csv(path: Path, history: dict[str, list[float]]) -> None:
    """Per-epoch loss and throughput as CSV, for `dvc plots`."""
    rows = ["epoch,loss,images_per_second"] + [
        f"{i + 1},{loss:.6f},{ips:.1f}"
        for i, (loss, ips) in enumerate(
            zip(history["loss_per_epoch"], history["images_per_second"], strict=True)
        )
    ]
    path.write_text("\n".join(rows) + "\n")
