"""The object-level interface every store backend implements, and the local-filesystem backend.

The artifact layout (content-addressed blobs, manifests published last) is written once, in
:mod:`selfsup.store.artifacts`, over this small interface; a backend only moves named objects.
Keys are ``/``-separated relative names, checked by :func:`check_key`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from selfsup.errors import StoreError
from selfsup.store.atomic import atomic_copy_file, atomic_write_bytes, sha256_file

_KEY = re.compile(r"^[A-Za-z0-9._=+-]+(/[A-Za-z0-9._=+-]+)*$")
_CHUNK = 1 << 20

Progress = Callable[[int], None]


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object name (no ``..``, no absolute path)."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise StoreError(f"invalid object name {key!r}: use letters, digits, ._=+- and '/'")
    return key


class ObjectBackend(Protocol):
    """Named objects with whole-object writes (a reader sees the old or the new object)."""

    def describe(self) -> str:
        """Where the objects live, for messages (``s3://bucket/prefix``, a path)."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """Size of an existing object in bytes (StoreError when missing)."""
        ...

    def put_file(self, key: str, path: Path, progress: Progress | None = None) -> None: ...

    def holds_copy_of(self, key: str, path: Path) -> bool:
        """Whether ``key`` exists and holds the content of the local file ``path``: size and a
        digest the store keeps (S3: the ETag; a folder: the stored file itself). What ``push``
        checks before it skips an upload, so a corrupt object is replaced, not trusted."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes: ...

    def delete(self, key: str) -> None:
        """Remove an object (no error when it is already gone)."""
        ...

    def iter_chunks(self, key: str, version_id: str | None = None) -> Iterator[bytes]:
        """The object's content in chunks (StoreError when missing)."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a ``/``-terminated folder or ""), sorted."""
        ...

    def versions(self, key: str) -> list[str]:
        """Version ids of ``key``, newest first (needs a versioned bucket)."""
        ...


class LocalBackend:
    """Objects as files under ``root``; each write is a temp file + rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise StoreError(f"{path} does not exist")
        return path.stat().st_size

    def put_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        atomic_copy_file(path, self._path(key))
        if progress is not None:
            progress(Path(path).stat().st_size)

    def holds_copy_of(self, key: str, path: Path) -> bool:
        stored = self._path(key)
        if not stored.is_file() or stored.stat().st_size != Path(path).stat().st_size:
            return False
        return sha256_file(stored) == sha256_file(path)

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data)

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        return b"".join(self.iter_chunks(key, version_id))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_chunks(self, key: str, version_id: str | None = None) -> Iterator[bytes]:
        if version_id is not None:
            raise StoreError(f"{self.root} is a local store: it keeps no object versions")
        path = self._path(key)
        if not path.is_file():
            raise StoreError(f"{path} does not exist")
        with open(path, "rb") as handle:
            yield from iter(lambda: handle.read(_CHUNK), b"")

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def versions(self, key: str) -> list[str]:
        raise StoreError(f"{self.root} is a local store: it keeps no object versions")
