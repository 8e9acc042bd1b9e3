"""Videos from an S3 prefix, downloaded to a scratch folder so the decoder reads local files.

OpenCV's decoder wants a path it can seek in; a video is read once per mining pass, so one
streamed download per object (with the store's retries and byte progress) is the simple and
robust way. The S3 endpoint and credentials come from the environment (or a mounted Secret), like
every other selfsup S3 access.
"""

from __future__ import annotations

import logging
from pathlib import Path

from selfsup.errors import DataError
from selfsup.store.atomic import atomic_write_bytes

log = logging.getLogger("selfsup.mine")


def is_remote(where: str) -> bool:
    return where.startswith("s3://")


def _local_name(key: str) -> str:
    """Keys in sub-prefixes keep their path (``a/b.avi`` → ``a__b.avi``): names never collide."""
    return key.replace("/", "__")


def fetch_videos(
    uri: str, suffixes: set[str], scratch: Path, shard: tuple[int, int] | None = None
) -> list[Path]:
    """Download the objects under ``uri`` (``s3://bucket/prefix``) whose names end in one of
    ``suffixes`` into ``scratch``; returns the local paths, sorted by name.

    ``shard=(index, count)`` downloads only that shard's videos (round-robin over the sorted local
    names, as :func:`selfsup.mining.shard.shard_videos` picks them), so each worker of a
    sharded run fetches only what it mines.
    """
    from selfsup.store.open import open_backend

    backend = open_backend(uri)
    keys = sorted(
        (k for k in backend.list_keys("") if Path(k).suffix.lower() in suffixes), key=_local_name
    )
    if not keys:
        raise DataError(f"{uri} holds no video with extension {sorted(suffixes)}")
    if shard is not None:
        index, count = shard
        keys = keys[index::count]
    scratch.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in keys:
        target = scratch / _local_name(key)
        atomic_write_bytes(target, b"".join(backend.iter_chunks(key)))
        log.info("fetched %s/%s (%d bytes)", uri.rstrip("/"), key, target.stat().st_size)
        paths.append(target)
    return sorted(paths, key=lambda p: p.name)
