"""The on-disk dataset format every stage reads and writes.

A dataset directory holds, per split, uint8 tensor shards ``<split>/shard-00000.pt`` (each a dict
``{"images": uint8[N,3,H,W], "labels": int64[N]}``; label -1 means unlabeled) and a
``manifest.json`` with the source, split sizes, class names, params and the sha256 of every file.
uint8 keeps a 50k-image CIFAR-10 split at 150 MB in memory and lets augmentations run on
integer tensors; ``torch.load(weights_only=True)`` reads shards without unpickling code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import DataError
from selfsup.store import atomic_write_bytes, read_manifest, write_manifest
from selfsup.store.tensors import load_tensors

DATASET_KIND = "dataset"
UNLABELED = -1


@dataclass(frozen=True)
class Split:
    """One split in memory: uint8 images [N,3,H,W] and int64 labels [N] (-1: unlabeled)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise DataError(
                f"images must be uint8 [N,3,H,W], got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"labels shape {tuple(self.labels.shape)} does not match "
                f"{self.images.shape[0]} images"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def labeled(self) -> bool:
        return bool(len(self)) and bool((self.labels != UNLABELED).all())


def _save_tensor_dict(path: Path, obj: dict[str, torch.Tensor]) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def write_dataset(
    root: Path,
    splits: dict[str, Split],
    *,
    source: str,
    class_names: list[str],
    params: dict[str, Any],
    shard_size: int = 10_000,
    **fields: Any,
) -> dict[str, Any]:
    """Write ``splits`` as shards under ``root`` and its manifest (last). Returns the manifest.

    ``root`` should be a fresh directory (see :func:`selfsup.store.atomic_directory`).
    """
    root = Path(root)
    sizes: dict[str, int] = {}
    shape: list[int] | None = None
    for name, split in splits.items():
        sizes[name] = len(split)
        if len(split):
            shape = list(split.images.shape[1:])
        for index, start in enumerate(range(0, max(len(split), 1), shard_size)):
            stop = start + shard_size
            _save_tensor_dict(
                root / name / f"shard-{index:05d}.pt",
                {
                    "images": split.images[start:stop].contiguous().clone(),
                    "labels": split.labels[start:stop].contiguous().clone(),
                },
            )
    return write_manifest(
        root,
        DATASET_KIND,
        params,
        source=source,
        splits=sizes,
        class_names=class_names,
        image_shape=shape,
        **fields,
    )


def read_dataset_manifest(root: Path, verify: bool = True) -> dict[str, Any]:
    """The dataset's manifest, with every shard's checksum verified by default."""
    return read_manifest(Path(root), kind=DATASET_KIND, verify=verify)


def load_split(root: Path, split: str, verify: bool = True) -> Split:
    """Load one split of a dataset directory into memory (checksums verified by default)."""
    root = Path(root)
    manifest = read_dataset_manifest(root, verify=verify)
    if split not in manifest["splits"]:
        raise DataError(f"{root} has no split {split!r}; it has {sorted(manifest['splits'])}")
    shards = sorted((root / split).glob("shard-*.pt"))
    parts = [load_tensors(p) for p in shards]
    images = torch.cat([p["images"] for p in parts])
    labels = torch.cat([p["labels"] for p in parts])
    if len(images) != manifest["splits"][split]:
        raise DataError(
            f"{root}/{split}: {len(images)} images, manifest says {manifest['splits'][split]}"
        )
    return Split(images=images, labels=labels)
