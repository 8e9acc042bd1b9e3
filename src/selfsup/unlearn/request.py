"""The deletion-request record: what was forgotten, when, from which model, into which, and proof.

``request.json`` in the stage's output says which samples (ids and the dataset version they
index), when the request was served (UTC), the model versions before and after (the
``content_hash`` of each encoder / head manifest: the sha256 over their files' checksums, so a
version names exact weights) and the audit metrics. ``ids`` are the train rows forgotten
(``train/<index>``); ``requested`` the ids as the request named them (rows, file names, user
ids) and ``resolved`` the rows each one named, so a request by name can be checked against the
dataset version it was resolved in. The ids' sha256 makes two records of the same
request comparable at a glance. Written with :func:`selfsup.store.atomic_write_json` (inside the
stage's atomic output directory), so a record is either complete or absent.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path
from typing import Any

from selfsup.store import atomic_write_json

REQUEST_NAME = "request.json"


def ids_digest(ids: list[str]) -> str:
    """sha256 of the sorted ids, one per line: a short, order-independent name of the request."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def request_record(
    *,
    ids: list[str],
    dataset: str,
    before: dict[str, str],
    after: dict[str, str],
    audit: dict[str, Any],
    params: dict[str, Any],
    method: str,
    requested: list[str] | None = None,
    resolved: dict[str, list[str]] | None = None,
    test_rows_kept: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The record's content (see the module docstring)."""
    return {
        "served": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "method": method,
        "ids": sorted(ids, key=lambda s: int(s.split("/", 1)[1])),
        "ids_count": len(ids),
        "ids_sha256": ids_digest(ids),
        "requested": list(requested if requested is not None else ids),
        "requested_count": len(requested if requested is not None else ids),
        "resolved": resolved if resolved is not None else {i: [i] for i in ids},
        "test_rows_kept": test_rows_kept or {},
        "dataset": dataset,
        "model_before": before,
        "model_after": after,
        "audit": audit,
        "params": params,
    }


def write_request(root: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``root/request.json`` atomically; returns the path."""
    path = Path(root) / REQUEST_NAME
    atomic_write_json(path, record)
    return path
