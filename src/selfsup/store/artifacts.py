"""Artifact directories in an object store: content-addressed blobs, manifest published last.

Layout under the store's root (local folder or ``s3://bucket/prefix``)::

    blobs/sha256/<hex>                   every file, named by its sha256 (stored once)
    artifacts/<name>/manifest.json       the directory's manifest (rel path -> sha256)

``push`` uploads the blobs the store lacks, then the manifest. A reader goes through the manifest,
so an interrupted push publishes nothing, and a re-run uploads only what is missing. ``pull``
downloads into a temporary directory, checks every file's sha256 while it streams, and renames
the directory into place only when all match. In a versioned bucket an overwritten manifest keeps
its old versions, and blobs are never deleted, so ``pull(..., version_id=...)`` restores the
previous artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from selfsup.errors import IntegrityError, StoreError
from selfsup.observe.progress import Progress
from selfsup.store.atomic import atomic_directory, sha256_file
from selfsup.store.backend import ObjectBackend, check_key
from selfsup.store.manifest import MANIFEST_NAME, read_manifest, safe_relative

log = logging.getLogger("selfsup.store")

BLOBS = "blobs/sha256"
ARTIFACTS = "artifacts"
_HEX64 = frozenset("0123456789abcdef")


def blob_key(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX64:
        raise IntegrityError(f"{sha256!r} is not a sha256 hex digest")
    return f"{BLOBS}/{sha256}"


def manifest_key(name: str) -> str:
    return f"{ARTIFACTS}/{check_key(name)}/{MANIFEST_NAME}"


class ArtifactStore:
    """Push and pull manifest-carrying directories through any :class:`ObjectBackend`."""

    def __init__(self, backend: ObjectBackend, workers: int = 8) -> None:
        self.backend = backend
        self.workers = workers

    def describe(self) -> str:
        return self.backend.describe()

    # --- write -----------------------------------------------------------------------------
    def push(self, local: Path, name: str) -> dict[str, Any]:
        """Publish the artifact directory ``local`` as ``name``; returns its manifest.

        Every local file is checked against its manifest sha256 while the uploads run (hashing
        beside the network transfer, not before it). On a mismatch the blobs uploaded for the
        bad files are deleted, nothing is published, and :class:`IntegrityError` names the file.
        """
        local = Path(local)
        manifest = read_manifest(local, verify=False)
        files: dict[str, str] = manifest["files"]
        first_path: dict[str, Path] = {}
        for rel, sha in sorted(files.items()):
            if not (local / safe_relative(rel)).is_file():
                raise IntegrityError(f"{local / rel} is listed in the manifest but missing")
            blob_key(sha)  # a valid digest, or IntegrityError
            first_path.setdefault(sha, local / rel)
        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(self.workers) as hashing:
            hashes = {rel: hashing.submit(sha256_file, local / rel) for rel in files}
            # One check per blob, in parallel (10,000 small files: 10,000 HEADs): a blob is
            # skipped only if the store holds this very content (size and digest), so a
            # corrupt one is uploaded again, and repaired, rather than trusted.
            present = list(
                pool.map(lambda sha: self.backend.holds_copy_of(blob_key(sha), first_path[sha]),
                         first_path)
            )  # fmt: skip
            missing = [sha for sha, there in zip(first_path, present, strict=True) if not there]
            total = sum(first_path[sha].stat().st_size for sha in missing)
            log.info(
                "push %s -> %s/%s: %d of %d blobs to upload (%.1f MB)",
                local,
                self.describe(),
                name,
                len(missing),
                len(first_path),
                total / 1e6,
            )
            with Progress(total, f"upload {name}", unit="B") as progress:
                jobs = [
                    pool.submit(
                        self.backend.put_file, blob_key(sha), first_path[sha], progress.update
                    )
                    for sha in missing
                ]
                for job in jobs:
                    job.result()
            bad = sorted(rel for rel, digest in hashes.items() if digest.result() != files[rel])
        if bad:
            for sha in {files[rel] for rel in bad} & set(missing):
                self.backend.delete(blob_key(sha))
            raise IntegrityError(
                f"{local / bad[0]} does not match its sha256 in the manifest ({len(bad)} such "
                "files): nothing was published"
            )
        # The stored manifest names its artifact: a manifest copied to another name is refused.
        stored = {**manifest, "name": name}
        self.backend.put_bytes(manifest_key(name), json.dumps(stored, indent=2).encode() + b"\n")
        return stored

    # --- read ------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self.backend.exists(manifest_key(name))

    def manifest(self, name: str, version_id: str | None = None) -> dict[str, Any]:
        return self._parse(name, self.backend.get_bytes(manifest_key(name), version_id))

    @staticmethod
    def _parse(name: str, raw: bytes) -> dict[str, Any]:
        try:
            manifest: dict[str, Any] = json.loads(raw)
            files = manifest["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{name}: the stored manifest is not valid ({exc})") from None
        for rel, sha in files.items():
            safe_relative(rel)
            blob_key(sha)
        if manifest.get("name") != name:
            raise IntegrityError(
                f"{name}: the stored manifest is that of {manifest.get('name')!r}, not of the "
                "artifact asked for; refusing it (re-push the artifact)"
            )
        return manifest

    def versions(self, name: str) -> list[str]:
        """Version ids of the artifact's manifest, newest first (versioned buckets only)."""
        return self.backend.versions(manifest_key(name))

    def names(self, prefix: str = "") -> list[str]:
        """Names of the published artifacts (those with a manifest) under ``prefix``."""
        root = f"{ARTIFACTS}/{prefix}".rstrip("/")
        suffix = "/" + MANIFEST_NAME
        return [
            key[len(ARTIFACTS) + 1 : -len(suffix)]
            for key in self.backend.list_keys(root)
            if key.endswith(suffix)
        ]

    def verify(self, name: str | None = None) -> dict[str, list[str]]:
        """Check every artifact (or ``name``): its manifest, and each blob streamed and hashed
        (a blob shared by artifacts is read once). Returns name → problems (empty: intact)."""
        names = [name] if name is not None else self.names()
        manifests: dict[str, dict[str, Any]] = {}
        report: dict[str, list[str]] = {}
        for each in names:
            try:
                manifests[each] = self.manifest(each)
            except (IntegrityError, StoreError) as exc:
                report[each] = [str(exc)]
        shas = sorted({sha for m in manifests.values() for sha in m["files"].values()})
        with ThreadPoolExecutor(self.workers) as pool:
            problems = dict(zip(shas, pool.map(self._blob_problem, shas), strict=True))
        for each, manifest in manifests.items():
            report[each] = [
                f"{rel}: {problems[sha]}"
                for rel, sha in sorted(manifest["files"].items())
                if problems[sha]
            ]
        return report

    def _blob_problem(self, sha: str) -> str | None:
        """What is wrong with blob ``sha`` (None: present and intact)."""
        if not self.backend.exists(blob_key(sha)):
            return f"blob {sha[:12]}… is missing"
        digest = hashlib.sha256()
        for chunk in self.backend.iter_chunks(blob_key(sha)):
            digest.update(chunk)
        if digest.hexdigest() != sha:
            return f"blob {sha[:12]}… is corrupt (its content hashes to {digest.hexdigest()[:12]}…)"
        return None

    def _download(self, sha: str, target: Path, progress: Progress) -> None:
        """Stream one blob into ``target``, hashing on the way; refuse a mismatch."""
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(target, "wb") as out:
            for chunk in self.backend.iter_chunks(blob_key(sha)):
                digest.update(chunk)
                out.write(chunk)
                progress.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha:
            raise IntegrityError(
                f"{self.describe()}: blob {sha[:12]}… for {target.name} has sha256 "
                f"{digest.hexdigest()[:12]}…: the stored object is corrupt; refusing it"
            )

    def pull(self, name: str, dest: Path, version_id: str | None = None) -> dict[str, Any]:
        """Download artifact ``name`` (optionally an older manifest version) into ``dest``.

        ``dest`` is replaced atomically and only when every file matches its sha256.
        """
        raw = self.backend.get_bytes(manifest_key(name), version_id)
        manifest = self._parse(name, raw)
        files: dict[str, str] = manifest["files"]
        sizes = {sha: self.backend.size(blob_key(sha)) for sha in set(files.values())}
        total = sum(sizes[s] for s in files.values())
        with (
            atomic_directory(Path(dest), manifest.get("kind")) as tmp,
            Progress(total, f"download {name}", unit="B") as progress,
            ThreadPoolExecutor(self.workers) as pool,
        ):
            jobs = [
                pool.submit(self._download, sha, tmp / safe_relative(rel), progress)
                for rel, sha in files.items()
            ]
            for job in jobs:
                job.result()
            (tmp / MANIFEST_NAME).write_bytes(raw)
            read_manifest(tmp, verify=False)
        return manifest
