"""Open a store from a URI: ``s3://bucket/prefix`` (settings from the environment) or a path."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from selfsup.errors import StoreError
from selfsup.store.artifacts import ArtifactStore
from selfsup.store.backend import LocalBackend, ObjectBackend
from selfsup.store.s3 import S3Backend, S3Settings


def open_backend(uri: str, settings: S3Settings | None = None) -> ObjectBackend:
    """The backend for ``uri``; S3 settings default to :meth:`S3Settings.from_env`."""
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        if not parts.netloc:
            raise StoreError(f"{uri!r}: an S3 store is s3://bucket[/prefix]")
        return S3Backend(parts.netloc, parts.path, settings or S3Settings.from_env())
    if "://" in uri:
        raise StoreError(f"{uri!r}: a store is s3://bucket[/prefix] or a local directory")
    return LocalBackend(Path(uri).expanduser())


def open_store(uri: str, settings: S3Settings | None = None) -> ArtifactStore:
    return ArtifactStore(open_backend(uri, settings))
