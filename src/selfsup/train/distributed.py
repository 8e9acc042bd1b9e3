"""Data-parallel training across processes, started by ``torchrun`` (or a Kubeflow TrainJob).

One process per device; ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. Without them (or with ``WORLD_SIZE=1``) nothing here
starts a process group and training is the plain single-process code path.

Why the loss gathers embeddings *with gradient*: contrastive losses take their negatives from the
batch, so the loss of the global batch is not the mean of per-rank losses. Every rank gathers
all ranks' projections (``torch.distributed.nn.functional.all_gather``, whose backward sums the
incoming gradients across ranks) and computes the same global loss. Each rank's local
projections thus receive ``world_size`` × dL/dz (one copy of the gradient from every rank's
identical loss) and DDP's gradient *average* divides that back: the parameter gradients equal
those of one process computing the loss on the concatenated batch (tested with 2 gloo ranks).
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed import _functional_collectives as collectives
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, Sampler

from selfsup.errors import ConfigError

log = logging.getLogger("selfsup.distributed")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; ``world_size == 1``: no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"${name}={raw!r} is not an integer (set by torchrun)") from None


def from_env() -> Dist:
    """The job layout torchrun put in the environment (single process when unset)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    if world > 1 and not os.environ.get("MASTER_ADDR"):
        raise ConfigError("WORLD_SIZE > 1 needs MASTER_ADDR and MASTER_PORT (start with torchrun)")
    return Dist(rank, world, local)


def is_main_process() -> bool:
    """Rank 0 (or no distributed job): the one process that writes outputs and pushes metrics.

    Reads the live process group when there is one, else ``$RANK``, so the CLI can ask before
    training has started the group.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return _env_int("RANK", 0) == 0


def device_for(job: Dist, device: torch.device) -> torch.device:
    """One GPU per process: rank ``LOCAL_RANK`` of the node uses ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and job.enabled:
        torch.cuda.set_device(job.local_rank)
        return torch.device("cuda", job.local_rank)
    return device


@contextmanager
def process_group(job: Dist, device: torch.device, timeout_s: float = 600.0) -> Iterator[None]:
    """Start the process group for ``job`` (NCCL on CUDA, gloo on CPU) and tear it down after;
    a no-op for a single process or when the caller already started one."""
    if not job.enabled or dist.is_initialized():
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend,
        rank=job.rank,
        world_size=job.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
        device_id=device if device.type == "cuda" else None,
    )
    log.info("rank %d/%d joined (%s)", job.rank, job.world_size, backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' ``tensor`` concatenated along dim 0, in rank order, differentiable: the
    backward pass sums each rank's gradient for this rank's slice (a reduce-scatter). Identity
    for one process.

    PyTorch's functional collective (the replacement it names for the deprecated
    ``torch.distributed.nn.functional.all_gather``); it also traces under ``torch.compile``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    world = dist.group.WORLD
    if world is None:  # unreachable once initialised; narrows the type
        raise RuntimeError("no default process group")
    gathered: torch.Tensor = collectives.all_gather_single(tensor.contiguous(), 0, world)
    return gathered


def barrier() -> None:
    """Wait for every rank (no-op for one process): e.g. until rank 0's checkpoint exists."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap(model: nn.Module, job: Dist, device: torch.device, sync_batchnorm: bool) -> nn.Module:
    """``model`` for data-parallel training: DDP averages the gradients across ranks.

    BatchNorm normalises with per-rank batch statistics unless ``sync_batchnorm``: then (CUDA
    only — PyTorch's SyncBatchNorm has no CPU kernel) the statistics are those of the global
    batch, as in SimCLR's "global BN". On CPU the flag is logged and ignored.
    """
    if not job.enabled:
        return model
    if sync_batchnorm:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        else:
            log.warning("sync_batchnorm needs CUDA; BatchNorm uses per-rank statistics on CPU")
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sampler(n: int, job: Dist, seed: int) -> DistributedSampler[int] | None:
    """This rank's share of one epoch's shuffled indices (``None`` for one process).

    The permutation depends only on ``seed`` (the caller passes the epoch's seed: the same on
    every rank and after a resume); rank ``r`` takes every ``world_size``-th index from ``r``, so
    step ``k``'s batches of all ranks together are exactly positions ``[k·B·W, (k+1)·B·W)`` of it.
    """
    if not job.enabled:
        return None
    return DistributedSampler(
        range(n),  # type: ignore[arg-type]  # only len() is used
        num_replicas=job.world_size,
        rank=job.rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )


class _RankShare(Sampler[list[int]]):
    """Every ``world_size``-th index of each global batch, from ``rank``."""

    def __init__(self, batches: Sampler[list[int]], job: Dist) -> None:
        self.batches, self.job = batches, job

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield list(batch)[self.job.rank :: self.job.world_size]

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def shard_batches(batches: Sampler[list[int]], job: Dist) -> Sampler[list[int]]:
    """This rank's share of each batch of a global batch sampler (the sampler itself for one
    process): the ranks' step-``k`` batches together are exactly the sampler's ``k``-th batch.
    A global batch must hold a multiple of ``world_size`` items (the batch size check ensures
    it for full batches)."""
    return _RankShare(batches, job) if job.enabled else batches
