"""The training data of one epoch: seeded, shuffled, per-rank batches of views or mined pairs.

Determinism is per epoch: the shuffling and every augmentation draw of epoch ``e`` come from
generators seeded with ``(seed, e)`` (and the rank), so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from selfsup.config import PretrainParams
from selfsup.data.augment import TwoViews, simclr_transform
from selfsup.data.augment_batched import BatchTwoViews, Images
from selfsup.data.shards import Split, load_split
from selfsup.errors import ConfigError
from selfsup.train import distributed
from selfsup.train.pairs import PairViews
from selfsup.train.schedule import view_size


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def rank_seed(seed: int, rank: int) -> int:
    """Per-rank augmentation seeds (rank 0 keeps the single-process seed)."""
    return seed ^ (rank << 40)


def training_split(data_dir: Path, params: PretrainParams) -> Split:
    """The train split, or its seeded ``max_images`` subset."""
    split = load_split(data_dir, "train")
    if params.max_images is not None and params.max_images < len(split):
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(params.seed))
        split = Split(
            split.images[order[: params.max_images]], split.labels[order[: params.max_images]]
        )
    return split


def check_batch(n: int, params: PretrainParams, what: str = "training images") -> None:
    if n < params.batch_size:
        raise ConfigError(
            f"pretrain.batch_size={params.batch_size} exceeds the {n} {what}: "
            "lower the batch size or use more data"
        )


def _loader_options(
    n: int,
    params: PretrainParams,
    epoch: int,
    device: torch.device,
    job: distributed.Dist,
    salt: int = 0,
) -> dict[str, Any]:
    """Shuffled, drop-last batches of this rank's share of the global batch; pinned on CUDA."""
    seed = epoch_seed(params.seed, epoch) + salt
    shard = distributed.sampler(n, job, seed)
    return {
        "batch_size": params.batch_size // job.world_size,
        "shuffle": shard is None,
        "sampler": shard,
        "drop_last": True,
        "num_workers": params.num_workers,
        "generator": torch.Generator().manual_seed(rank_seed(seed, job.rank)),
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
    each rank takes its share of every batch). The views' size is the epoch's
    (``pretrain.progressive_resize``)."""
    size = view_size(epoch, params.epochs, int(images.shape[-1]), params.progressive_resize)
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


def forever(loader: DataLoader[Any]) -> Iterator[Any]:
    """Batches of ``loader``, starting a new pass whenever one ends (pairs in a mixed run)."""
    while True:
        yield from loader


def as_unit_float(views: torch.Tensor) -> torch.Tensor:
    """uint8 views (torchvision backend) → [0, 1]; float views (kornia) pass through."""
    return views.float().div_(255.0) if views.dtype == torch.uint8 else views.float()
