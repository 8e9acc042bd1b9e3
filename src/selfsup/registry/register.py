"""Register a freshly evaluated model and run the promotion gate: the step shared by
``selfsup registry register`` (``dvc repro``'s last stage) and the ``register`` task of the
scheduled ``retrain`` pipeline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selfsup.config import GateParams
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


def with_promoted(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The decision with ``promoted`` (a number the Kubeflow UI can show next to ``action``)."""
    return {**decision, "promoted": decision["action"] == "promote"}


def register_and_gate(
    registry: Registry,
    model: Path,
    evaluation: Path,
    gate: GateParams,
    lineage: dict[str, Any],
    promote: bool = True,
) -> dict[str, Any]:
    """Register ``model`` with the metrics in ``evaluation`` (metrics.json of ``selfsup
    evaluate``) as challenger, then promote it only if the gate says so (``promote=False``: only
    record the gate's verdict — what ``dvc repro`` and ``dvc exp run`` do). Returns the decision."""
    if not Path(evaluation).is_file():
        raise SelfsupError(f"{evaluation} does not exist: run selfsup evaluate first")
    metrics = json.loads(Path(evaluation).read_text())
    _ensure_versioned_bucket(registry)
    record = registry.register(Path(model), metrics, lineage)
    return with_promoted(registry.promote(record["id"], gate, apply=promote))


def register_unlearned(
    registry: Registry,
    unlearned: Path,
    evaluation: Path,
    gate: GateParams,
    lineage: dict[str, Any],
) -> dict[str, Any]:
    """Serve a deletion request in the registry: ``unlearned`` is ``selfsup unlearn``'s output
    (``encoder/``, ``request.json``, ``metrics.json``), ``evaluation`` the unlearned encoder's
    metrics.json. Registers the encoder with the request in its lineage; it becomes champion
    only when it was unlearned from the champion and the audit passes
    (:mod:`selfsup.registry.forget`). Returns the decision, with ``audit_passed``."""
    from selfsup.registry.forget import (
        audit_verdict,
        check_request_matches_champion,
        deletion_lineage,
    )
    from selfsup.unlearn.request import REQUEST_NAME

    for path in (unlearned / REQUEST_NAME, unlearned / "metrics.json", evaluation):
        if not path.is_file():
            raise SelfsupError(f"{path} does not exist: run selfsup unlearn / evaluate first")
    request = json.loads((unlearned / REQUEST_NAME).read_text())
    audit = json.loads((unlearned / "metrics.json").read_text())
    champion = registry.aliases().get("champion")
    check_request_matches_champion(registry.record(champion) if champion else None, request)
    _ensure_versioned_bucket(registry)
    metrics = json.loads(Path(evaluation).read_text())
    record = registry.register(
        unlearned / "encoder", metrics, {**lineage, **deletion_lineage(request)}
    )
    passed, reason = audit_verdict(audit, gate)
    if passed:
        forced = f"deletion request {request['ids_sha256'][:12]}, {reason}"
        decision = registry.promote(record["id"], gate, force=forced)
    else:
        decision = registry.reject(record["id"], reason)
    return with_promoted({**decision, "audit_passed": passed})
