"""The on-disk dataset format every stage reads and writes.

A dataset directory holds, per split, uint8 tensor shards ``<split>/shard-00000.pt`` (each a dict
``{"images": uint8[N,3,H,W], "labels": int64[N]}``; label -1 means unlabeled) and a
``manifest.json`` with the source, split sizes, class names, params and the sha256 of every file.
uint8 keeps a 50k-image CIFAR-10 split at 150 MB in memory and lets augmentations run on
integer tensors; ``torch.load(weights_only=True)`` reads shards without unpickling code.

A source whose samples have names people know (an archive member, a file in a folder, a user id
from ``data.ids_csv``) also writes ``ids.json``: per split, each row's **source id** in row order
(and its **user id**, null where the CSV gives none), so a deletion request can name samples the
way their owners do (:mod:`selfsup.unlearn.ids`). It is a file of the dataset like the shards:
checksummed in the manifest and so part of ``content_hash``. That is deliberate: a deletion
request records the content hash as the dataset version its ids are resolved against, and the
same pixels under another mapping (renamed files, another ids CSV) must be another version, or
one record could mean two sets of rows. Datasets without the file (synthetic ones, and those
prepared before it existed) stay valid; their rows are named by index only. Compact JSON: about
1.4 MB for CIFAR-10's 60k names, 0.7 % of its 185 MB of shards (measured).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import DataError
from selfsup.store import atomic_write_bytes, read_manifest, write_manifest
from selfsup.store.tensors import load_tensors

DATASET_KIND = "dataset"
UNLABELED = -1
IDS_NAME = "ids.json"
# A row id, ``<split>/<index>`` (selfsup.unlearn.ids): no source or user id may read as one.
ROW_ID = re.compile(r"^(train|test)/[0-9]+$")


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


@dataclass(frozen=True)
class SampleIds:
    """Per split, each row's source id and (from ``data.ids_csv``) user id, in row order.

    ``prefix`` is what the source put above every id (an archive's top-level folder): a request
    may name a sample with it or without it.
    """

    source: dict[str, list[str]]
    users: dict[str, list[str | None]] | None = None
    prefix: str = ""

    def check(self, sizes: dict[str, int], where: str) -> None:
        """Raise DataError unless every split has one id (and one user id) per row."""
        for name, size in sizes.items():
            lengths = [len(self.source.get(name, []))]
            if self.users is not None:
                lengths.append(len(self.users.get(name, [])))
            if any(n != size for n in lengths):
                raise DataError(f"{where}: split {name!r} has {size} rows but {lengths} sample ids")


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
    ids: SampleIds | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Write ``splits`` as shards under ``root``, ``ids`` as ``ids.json``, and the manifest
    (last). Returns the manifest.

    ``root`` should be a fresh directory (see :func:`selfsup.store.atomic_directory`).
    """
    root = Path(root)
    if ids is not None:
        ids.check({name: len(split) for name, split in splits.items()}, str(root))
        body = {"source_ids": ids.source, "user_ids": ids.users, "prefix": ids.prefix}
        # compact: one line, no spaces (the ids are most of the bytes)
        atomic_write_bytes(root / IDS_NAME, json.dumps(body, separators=(",", ":")).encode())
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
        **image_statistics(splits),
        **fields,
    )


def image_statistics(splits: dict[str, Split], chunk: int = 4096) -> dict[str, Any]:
    """What the encoder and the augmentations need to know about the pixels: per-channel mean
    and std in [0, 1] of the train split (or the first non-empty one) — the encoder normalises
    with these — and whether every image is grayscale (three equal channels), on which colour
    augmentations do nothing useful. Empty when there are no images."""
    name = next((n for n in ("train", *splits) if n in splits and len(splits[n])), None)
    if name is None:
        return {}
    images = splits[name].images
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    grayscale = True
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        values = batch.to(torch.float64).div_(255.0)
        total += values.sum(dim=(0, 2, 3))
        squares += values.square().sum(dim=(0, 2, 3))
        grayscale = grayscale and bool(
            torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 1], batch[:, 2])
        )
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)
    normalization = {
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "split": name,
    }
    return {"normalization": normalization, "grayscale": grayscale}


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


def read_sample_ids(root: Path, manifest: dict[str, Any]) -> SampleIds | None:
    """The dataset's :class:`SampleIds`, or None when it has none (``ids.json`` is not in its
    manifest). The file's checksum is verified with the manifest's other files
    (:func:`read_dataset_manifest`); a malformed file is a DataError."""
    if IDS_NAME not in manifest.get("files", {}):
        return None
    path = Path(root) / IDS_NAME
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        source = {str(k): [str(i) for i in v] for k, v in body["source_ids"].items()}
        users = body.get("user_ids")
        if users is not None:
            users = {str(k): [None if i is None else str(i) for i in v] for k, v in users.items()}
        ids = SampleIds(source=source, users=users, prefix=str(body.get("prefix") or ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a valid sample-id file: {exc}") from None
    ids.check(dict(manifest["splits"]), str(path))
    return ids
