"""Raw data in the store: an archive or an image folder under ``s3://bucket/prefix/NAME``.

A pod has no local copy of the raw data, so the cluster's data task reads it from the S3 store
(MinIO in the cluster). ``selfsup data upload`` seeds the store once: the archive file, or the
folder's images, are published as the artifact ``NAME`` of the store ``s3://bucket/prefix``
with a manifest holding every file's sha256 (:class:`~selfsup.store.artifacts.ArtifactStore`:
content-addressed blobs, the manifest written last). ``data.archive`` / ``data.folder`` may
then be that URI; :func:`fetch_source` pulls it, every file verified, into a local cache, and
the sources read the local copy as they would any path. A second fetch of unchanged content
reuses the cache after re-checking its sha256s.

The URI's last path segment is the artifact's name, the rest is the store, so a name never
holds a slash (``upload`` refuses one).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from selfsup.errors import DataError, IntegrityError

log = logging.getLogger(__name__)

SOURCE_KIND = "raw-source"
FOLDER_ROOT = "images"
CACHE_ENV = "SELFSUP_CACHE_DIR"


def is_store_uri(location: str | None) -> bool:
    return bool(location) and str(location).startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix/NAME`` → (store ``s3://bucket/prefix``, name ``NAME``)."""
    head, _, name = uri.rstrip("/").rpartition("/")
    if not is_store_uri(uri) or not name or head in ("s3:/", "s3:"):
        raise DataError(
            f"{uri!r}: a data source in the store is s3://bucket[/prefix]/NAME, e.g. "
            "s3://selfsup/sources/cifar10-jpg"
        )
    return head, name


def cache_root() -> Path:
    """``$SELFSUP_CACHE_DIR``, else ``~/.cache/selfsup``, else the temp dir (a pod's home may be
    read-only)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    home = Path("~/.cache/selfsup").expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
        return home if os.access(home, os.W_OK) else Path(tempfile.gettempdir()) / "selfsup-cache"
    except OSError:
        return Path(tempfile.gettempdir()) / "selfsup-cache"


def _stage(source: Path, staging: Path) -> Literal["archive", "folder"]:
    """Link ``source``'s files into ``staging`` (symlinks: nothing is copied) and say which
    layout it is: the archive file at the root, or the folder's files under ``images/``."""
    if source.is_file():
        (staging / source.name).symlink_to(source.resolve())
        return "archive"
    if not source.is_dir():
        raise DataError(f"{source} does not exist: upload an archive file or an image folder")
    files = [p for p in sorted(source.rglob("*")) if p.is_file() and not p.is_symlink()]
    if not files:
        raise DataError(f"{source} holds no files to upload")
    for path in files:
        target = staging / FOLDER_ROOT / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())
    return "folder"


def upload_source(source: Path, uri: str) -> dict[str, Any]:
    """Publish the archive or folder ``source`` as ``uri``; returns the published manifest."""
    from selfsup.store.manifest import write_manifest
    from selfsup.store.open import open_store
    from selfsup.store.s3 import S3Backend

    store_uri, name = split_uri(uri)
    store = open_store(store_uri)
    with tempfile.TemporaryDirectory(prefix="selfsup-upload-") as tmp:
        layout = _stage(Path(source).expanduser(), Path(tmp))
        write_manifest(Path(tmp), SOURCE_KIND, {}, layout=layout, uploaded_from=str(source))
        if isinstance(store.backend, S3Backend):
            store.backend.ensure_bucket(versioning=True)
        manifest = store.push(Path(tmp), name)
    log.info("uploaded %s (%s, %d files) as %s", source, layout, len(manifest["files"]), uri)
    return manifest


def fetch_source(uri: str, layout: Literal["archive", "folder"]) -> Path:
    """The local path of the ``layout`` source stored at ``uri`` (the archive file, or the image
    folder) in the cache: pulled, every file's sha256 checked, unless the cached copy already
    holds exactly the stored files."""
    from selfsup.store.manifest import read_manifest
    from selfsup.store.open import open_store

    store_uri, name = split_uri(uri)
    store = open_store(store_uri)
    if not store.exists(name):
        raise DataError(
            f"{uri}: no such data in the store {store.describe()}; seed it once with "
            f"`selfsup data upload PATH {uri}`"
        )
    remote = store.manifest(name)
    if remote.get("kind") != SOURCE_KIND:
        raise DataError(f"{uri} holds a {remote.get('kind')!r}, not data uploaded as a source")
    if remote.get("layout") != layout:
        raise DataError(
            f"{uri} holds an uploaded {remote.get('layout')}, but the data source needs an "
            f"{layout}: use data.{remote.get('layout')} for it"
        )
    local = cache_root() / "sources" / str(remote["content_hash"])
    try:
        intact = read_manifest(local, SOURCE_KIND)["files"] == remote["files"]
    except IntegrityError:
        intact = False  # absent or damaged: pull it again
    if intact:
        log.info("data source %s: the cached copy %s is intact", uri, local)
    else:
        log.info("data source %s: pulling %d files into %s", uri, len(remote["files"]), local)
        store.pull(name, local)
    if layout == "folder":
        return local / FOLDER_ROOT
    (archive,) = remote["files"]
    return local / str(archive)
