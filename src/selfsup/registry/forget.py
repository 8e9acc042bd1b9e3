"""Serving a deletion request in the registry: the unlearned model replaces the champion only if
it was unlearned *from* the champion, on the champion's data, and its audit is close enough to
retraining from scratch.

The improvement gate of :mod:`selfsup.registry.gate` does not apply: forgetting is allowed to cost
accuracy. What must hold instead (``GateParams.max_forget_gap`` / ``max_attack_gap``): the
unlearned model's accuracy on the forget set and the membership attack's member rate on it
exceed the retrain baseline's by at most the margins (the attack only when it was trusted on the
original model). Without a retrain baseline there is nothing to compare with, so the model is
registered but not promoted — a person decides (``selfsup registry promote --force``).
"""

from __future__ import annotations

from typing import Any

from selfsup.config import GateParams
from selfsup.errors import SelfsupError


def audit_verdict(unlearn: dict[str, Any], gate: GateParams) -> tuple[bool, str]:
    """(pass, reason) for the metrics of ``selfsup unlearn`` (its ``metrics.json``)."""
    method = str(unlearn["method"])
    gaps = unlearn.get("gaps_to_retrain", {}).get(method)
    if not gaps:
        return False, f"no retrain baseline to audit {method} against: not promoted"
    forget_gap = gaps.get("acc_forget")
    if forget_gap is None or forget_gap > gate.max_forget_gap:
        return False, f"forget-set accuracy {forget_gap} above retrain's by > {gate.max_forget_gap}"
    trusted = bool(unlearn.get("mia", {}).get("trusted"))
    attack_gap = gaps.get("attack_forget_member_rate")
    if trusted and (attack_gap is None or attack_gap > gate.max_attack_gap):
        return False, f"attack member rate {attack_gap} above retrain's by > {gate.max_attack_gap}"
    attack = f"attack gap {attack_gap:+.3f}" if trusted else "attack untrusted, not used"
    return True, f"audit passed: forget gap {forget_gap:+.3f}, {attack}"


def check_request_matches_champion(
    champion: dict[str, Any] | None, request: dict[str, Any]
) -> None:
    """Refuse a request served on another model or dataset than the current champion's."""
    if champion is None:
        raise SelfsupError(
            "the registry has no champion: there is no deployed model to forget from"
        )
    lineage = champion["lineage"]
    before = request["model_before"]["encoder"]
    if lineage.get("model_content_hash") != before:
        raise SelfsupError(
            f"the request was served on model {before[:16]}, but the champion "
            f"{champion['id']} is {str(lineage.get('model_content_hash'))[:16]}: serve it again"
        )
    if lineage.get("data_content_hash") not in (None, request["dataset"]):
        raise SelfsupError(
            "the request's ids index another dataset version than the champion was trained on"
        )


def deletion_lineage(request: dict[str, Any]) -> dict[str, Any]:
    """What the registry keeps about the request (the ids themselves stay in request.json)."""
    return {
        "deletion_request": {
            key: request[key]
            for key in ("ids_sha256", "ids_count", "served", "method", "dataset", "model_before")
        }
    }
