"""Register a freshly evaluated model and run the promotion gate: the step shared by
``selfsup registry register`` (``dvc repro``'s last stage) and the ``register`` task of the
scheduled ``retrain`` pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfsup.config import RegistryParams
from selfsup.errors import SelfsupError
from selfsup.registry.registry import Registry


def open_registry(uri: str) -> Registry:
    """The registry at ``uri`` (a folder or ``s3://bucket/prefix``)."""
    from selfsup.store.open import open_store

    return Registry(open_store(uri))


def _ensure_versioned_bucket(registry: Registry) -> None:
    """Create an S3 registry's bucket on first registration, with versioning on, so that an
    overwritten object keeps its previous version."""
    from selfsup.store.s3 import S3Backend

    if isinstance(registry.objects, S3Backend):
        registry.objects.ensure_bucket(versioning=True)


def register_and_gate(
    registry: Registry,
    model: Path,
    evaluation: Path,
    gate: RegistryParams,
    lineage: dict[str, Any],
) -> dict[str, Any]:
    """Register ``model`` with the metrics in ``evaluation`` (metrics.json of ``selfsup
    evaluate``) as challenger, then promote it only if the gate says so. Returns the decision."""
    if not Path(evaluation).is_file():
        raise SelfsupError(f"{evaluation} does not exist: run selfsup evaluate first")
    metrics = json.loads(Path(evaluation).read_text())
    _ensure_versioned_bucket(registry)
    record = registry.register(Path(model), metrics, lineage)
    return dict(registry.promote(record["id"], gate))
