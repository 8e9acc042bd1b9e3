"""Artifact storage: atomic writes, checksums, manifests, and local/S3 artifact stores.

:mod:`atomic` and :mod:`manifest` are the one implementation of atomic writes and manifests;
:mod:`artifacts` publishes manifest-carrying directories through a backend (:mod:`backend` for
the local filesystem, :mod:`s3` for S3); :mod:`open` picks the backend from a URI.
"""

from selfsup.store.atomic import (
    atomic_copy_file,
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    sha256_file,
)
from selfsup.store.manifest import MANIFEST_NAME, read_manifest, write_manifest

__all__ = [
    "MANIFEST_NAME",
    "atomic_copy_file",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]
