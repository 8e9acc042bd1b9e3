"""``manifest.json``: what an artifact directory is and the sha256 of every file in it.

Every dataset or model directory carries one. It is written last, so its presence means the
artifact is complete, and it makes lineage free: the manifest records the params and inputs
(by their manifests' hashes) that produced the artifact.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from selfsup import __version__
from selfsup.errors import IntegrityError
from selfsup.store.atomic import atomic_write_json, sha256_file

MANIFEST_NAME = "manifest.json"


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith(".")
    )


def safe_relative(rel: str) -> str:
    """A manifest's file name, refused if it could leave its artifact's directory."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
        raise IntegrityError(
            f"manifest lists an unsafe path {rel!r}: it must stay inside the artifact"
        )
    return rel


def params_digest(params: dict[str, Any]) -> str:
    """sha256 (hex) of ``params`` as canonical JSON (sorted keys, no spaces): the same
    digest for the same parameters whatever their order, e.g. a manifest's ``params``."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_manifest(root: Path, kind: str, params: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Checksum every file under ``root`` and write ``root/manifest.json`` (atomically, last).

    ``fields`` holds kind-specific entries (split sizes, class names, inputs, metrics ...).
    Returns the manifest as written; its ``content_hash`` identifies the artifact's content.
    """
    root = Path(root)
    files = {str(p.relative_to(root)): sha256_file(p) for p in _files(root)}
    content = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    manifest: dict[str, Any] = {
        "kind": kind,
        "selfsup_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "params": params,
        "files": files,
        "content_hash": content,
        **fields,
    }
    atomic_write_json(root / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(root: Path, kind: str | None = None, verify: bool = True) -> dict[str, Any]:
    """Read ``root/manifest.json``; check its kind and (by default) every file's sha256.

    Raises :class:`IntegrityError` with the offending path when a file is missing or changed.
    """
    root = Path(root)
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise IntegrityError(f"{root} does not exist or is not a directory")
    if not path.is_file():
        raise IntegrityError(
            f"{root} has no {MANIFEST_NAME}: not a selfsup artifact, or an interrupted write"
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    if kind is not None and manifest.get("kind") != kind:
        raise IntegrityError(f"{root} holds a {manifest.get('kind')!r}, expected a {kind!r}")
    for rel in manifest.get("files", {}):
        safe_relative(rel)  # a listed ../../etc/os-release is never read, hashed or accepted
    if verify:
        for rel, expected in manifest["files"].items():
            file = root / rel
            if not file.is_file():
                raise IntegrityError(f"{file} is listed in the manifest but missing")
            if sha256_file(file) != expected:
                raise IntegrityError(f"{file} does not match its sha256 in {path}")
    return manifest
