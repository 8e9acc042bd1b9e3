"""The distilled set on disk: what ``selfsup distill`` writes and ``pretrain --method distilled``
reads. A directory holding::

    images.pt     float32 [m,3,H,W] in [0,1]   (learnt images; not quantised to uint8)
    targets.pt    float32 [m,D]                (learnt targets, D = teacher width)
    manifest.json kind "distilled", params, lineage, shapes (written last, over every file)

plus whatever else its writer puts there first (previews, metrics).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import DataError
from selfsup.store import atomic_write_bytes, read_manifest, write_manifest
from selfsup.store.tensors import load_tensors

DISTILLED_KIND = "distilled"
IMAGES_NAME = "images.pt"
TARGETS_NAME = "targets.pt"


def _save_tensor(path: Path, tensor: torch.Tensor) -> None:
    buffer = io.BytesIO()
    torch.save(tensor.detach().cpu().contiguous(), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_distilled(
    root: Path, images: torch.Tensor, targets: torch.Tensor, params: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Write ``images`` and ``targets`` into ``root``, then the manifest over every file there
    (so the caller writes its other files first); returns the manifest."""
    if images.ndim != 4 or targets.ndim != 2 or len(images) != len(targets):
        raise DataError(
            f"images {tuple(images.shape)} and targets {tuple(targets.shape)} do not match"
        )
    _save_tensor(Path(root) / IMAGES_NAME, images.float())
    _save_tensor(Path(root) / TARGETS_NAME, targets.float())
    return write_manifest(
        Path(root),
        DISTILLED_KIND,
        params,
        num_images=len(images),
        image_shape=list(images.shape[1:]),
        target_dim=int(targets.shape[1]),
        **fields,
    )


def load_distilled(root: Path) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Images ``[m,3,H,W]`` (float, [0,1]), targets ``[m,D]`` and the manifest (verified)."""
    manifest = read_manifest(Path(root), kind=DISTILLED_KIND)
    images = load_tensors(Path(root) / IMAGES_NAME)
    targets = load_tensors(Path(root) / TARGETS_NAME)
    if images.ndim != 4 or targets.ndim != 2 or len(images) != len(targets):
        raise DataError(
            f"{root}: images {tuple(images.shape)} and targets {tuple(targets.shape)} do not match"
        )
    return images.float(), targets.float(), manifest
