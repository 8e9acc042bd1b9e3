"""Artifact storage: atomic writes, checksums and manifests."""

from selfsup.store.atomic import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    sha256_file,
)
from selfsup.store.manifest import MANIFEST_NAME, read_manifest, write_manifest

__all__ = [
    "MANIFEST_NAME",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]
