"""Write-once log slots: the primitive that keeps concurrent registry writers from losing decisions.

The registry's state (champion, challenger, history) lives in an append-only log of numbered
objects, ``registry/log/<seq>.json``. A writer appends by creating slot ``last + 1``; the log
stays a total order only if two writers can never both believe they created the same slot.
:func:`create_once` gives that guarantee on each backend:

- **A folder**: the entry is written to a hidden temp file and hard-linked to its name;
  ``link(2)`` fails when the name exists, atomically, and a reader never sees half an entry.
- **S3**: the PUT carries ``If-None-Match: *``. Ceph RGW (tested: 16.2, ``tests/integration/
  test_registry_concurrency.py``) honours it only in an *unversioned* bucket (412 to the
  loser); in a *versioned* bucket, which the registry's is, RGW accepts every PUT as a new
  version. There the rule is **the oldest version holds the slot**: RGW links versions of one
  key in a total order and lists them newest first, so once a version is the oldest no later
  PUT can displace it. After its PUT a writer reads the slot's oldest version and compares it
  with the bytes it wrote (each entry carries a random claim id, so equal bytes mean its own
  entry); a loser deletes its version. Either way a writer that lost learns it.

Reads go through :func:`read_slot` (the oldest version on S3, never the newest, which may be a
loser's), so every reader sees the same entry in each slot.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid

from selfsup.errors import StoreError
from selfsup.store.backend import LocalBackend, ObjectBackend, check_key
from selfsup.store.s3 import S3Backend

LOG_PREFIX = "registry/log"
_SLOT = re.compile(r"^registry/log/(\d{12})\.json$")
# S3's answers to a conditional PUT that lost: the object exists (412), or AWS's "another
# conditional write to this key is in flight" (409).
_LOST_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}


def slot_key(seq: int) -> str:
    """The object name of log entry ``seq`` (zero-padded, so names sort as numbers do)."""
    return f"{LOG_PREFIX}/{seq:012d}.json"


def slots(backend: ObjectBackend) -> list[int]:
    """The sequence numbers present in the log, ascending."""
    found = (_SLOT.match(key) for key in backend.list_keys(LOG_PREFIX))
    return sorted(int(match.group(1)) for match in found if match)


def read_slot(backend: ObjectBackend, seq: int) -> bytes:
    """The entry that holds slot ``seq`` (on S3 its oldest version: see the module doc)."""
    key = slot_key(seq)
    if isinstance(backend, S3Backend):
        versions = backend.versions(key)
        if versions:
            return backend.get_bytes(key, versions[-1])
    return backend.get_bytes(key)


def create_once(backend: ObjectBackend, key: str, data: bytes) -> bool:
    """Create ``key`` holding ``data`` unless it exists. True exactly when, afterwards, ``key``
    holds this call's ``data`` for good; False when another writer holds it (nothing of this
    call's is left behind). ``data`` must be unique to the call (carry a random id)."""
    if isinstance(backend, LocalBackend):
        return _create_once_local(backend, key, data)
    if isinstance(backend, S3Backend):
        return _create_once_s3(backend, key, data)
    raise StoreError(f"{backend.describe()}: no write-once create for {type(backend).__name__}")


def _create_once_local(backend: LocalBackend, key: str, data: bytes) -> bool:
    target = backend.root / check_key(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _create_once_s3(backend: S3Backend, key: str, data: bytes) -> bool:
    from minio.error import S3Error

    name = backend._key(key)
    what = f"create s3://{backend.bucket}/{name}"

    def put() -> str | None:
        """Our new version's id ("" in an unversioned bucket), or None when refused."""
        try:
            # minio's public put_object turns unknown headers into x-amz-meta-* metadata.
            result = backend.client._put_object(
                backend.bucket,
                name,
                data,
                headers={"If-None-Match": "*", "Content-Type": "application/json"},
            )
        except S3Error as exc:
            if exc.code in _LOST_CODES:
                return None
            raise
        return str(result.version_id or "")

    ours = backend._call(what, put)
    if ours in ("", "null"):
        # Unversioned: the server took the conditional PUT, so the slot was free.
        return True
    # Refused (None): someone holds the slot, maybe this call itself, when a retried PUT's
    # first try landed. Versioned: our PUT made a version, held only if it is the oldest.
    versions = backend.versions(key)
    held = bool(versions) and backend.get_bytes(key, versions[-1]) == data
    if not held and ours:
        with contextlib.suppress(StoreError):  # a left-over loser's version is harmless
            backend._call(
                f"delete our version of s3://{backend.bucket}/{name}",
                lambda: backend.client.remove_object(backend.bucket, name, version_id=ours),
            )
    return held
