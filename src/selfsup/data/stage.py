"""``selfsup data prepare``: the configured source → a dataset directory (shards + manifest).

The splits are built in memory and written atomically, so a failure (an unreadable image with
``on_corrupt=fail``, a full disk) leaves the previous output untouched, never half a dataset.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from selfsup.config import DataParams
from selfsup.data.shards import DATASET_KIND, IDS_NAME, write_dataset
from selfsup.data.sources import SourceData, load_source
from selfsup.store import atomic_directory, sha256_file

logger = logging.getLogger(__name__)


def manifest_fields(data: SourceData, image_size: int) -> dict[str, Any]:
    """Source-specific manifest entries: the archive's identity, the unreadable images, the
    images' stored sizes and how many were resized, and where the sample ids (``ids.json``) come
    from (null: rows are named by index only)."""
    archive = (
        {"path": str(data.archive), "sha256": sha256_file(data.archive), **data.archive_info}
        if data.archive is not None
        else None
    )
    corrupt = {
        "skipped": data.corrupt_skipped,
        "per_split": {split: report.count for split, report in data.corrupt.items()},
        "example": data.corrupt_example,
    }
    sample_ids = None if data.ids is None else {"file": IDS_NAME, **data.ids_info}
    return {
        "origin": data.origin,
        "archive": archive,
        "corrupt_images": corrupt,
        "sample_ids": sample_ids,
        "stored_sizes": {
            split: {
                "sizes": sizes.counts,
                "resized_to": [image_size, image_size],
                "resized": sizes.resized(image_size),
            }
            for split, sizes in data.sizes.items()
        },
    }


def _log_conversions(manifest: dict[str, Any], image_size: int) -> None:
    """Say what the data stage changed about the pixels, so no conversion is silent."""
    for split, stored in manifest.get("stored_sizes", {}).items():
        if stored["resized"]:
            sizes = ", ".join(f"{k} ({n})" for k, n in sorted(stored["sizes"].items()))
            logger.info(
                "%s: %d images resized to %dx%d from stored sizes %s",
                split,
                stored["resized"],
                image_size,
                image_size,
                sizes,
            )
    if manifest.get("grayscale"):
        logger.info(
            "the images are grayscale, stored as 3 equal channels (manifest: grayscale true); "
            "colour jitter changes only brightness and contrast there, random grayscale nothing"
        )


def run(*, params: DataParams, out: Path) -> dict[str, Any]:
    """Build the dataset described by ``params`` into ``out`` (replaced atomically).

    Returns the metrics: images per split, unreadable images skipped, seconds, images/second.
    """
    start = time.perf_counter()
    data = load_source(params)
    fields = manifest_fields(data, params.image_size)
    with atomic_directory(Path(out), DATASET_KIND) as tmp:
        manifest = write_dataset(
            tmp,
            data.splits,
            source=params.source,
            class_names=data.class_names,
            params=params.model_dump(),
            shard_size=params.shard_size,
            ids=data.ids,
            **fields,
        )
    _log_conversions(manifest, params.image_size)
    seconds = time.perf_counter() - start
    images = {split: len(s) for split, s in data.splits.items()}
    total = sum(images.values())
    metrics: dict[str, Any] = {
        "images": images,
        "images_total": total,
        "classes": len(data.class_names),
        "corrupt_skipped": data.corrupt_skipped,
        "seconds": round(seconds, 3),
        "images_per_second": round(total / seconds, 1) if seconds > 0 else None,
    }
    logger.info("prepared %d images from %s into %s in %.1f s", total, data.origin, out, seconds)
    return metrics
