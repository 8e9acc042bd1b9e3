"""Deletion requests in the registry: the audit verdict, the champion check, and the unlearned
model replacing the champion only when both pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_registry import evaluation, model_dir

from selfsup.config import RegistryParams
from selfsup.errors import SelfsupError
from selfsup.registry.forget import audit_verdict
from selfsup.registry.register import register_unlearned
from selfsup.registry.registry import Registry
from selfsup.store.artifacts import ArtifactStore
from selfsup.store.backend import LocalBackend

GATE = RegistryParams(max_forget_gap=0.05, max_attack_gap=0.05)


def audit(
    forget_gap: float | None, attack_gap: float | None, trusted: bool = True
) -> dict[str, Any]:
    gaps = {"acc_forget": forget_gap, "attack_forget_member_rate": attack_gap, "time_ratio": 0.1}
    return {
        "method": "laf+r",
        "mia": {"trusted": trusted},
        "gaps_to_retrain": {} if forget_gap is None else {"laf+r": gaps},
    }


@pytest.mark.parametrize(
    ("metrics", "passed", "fragment"),
    [
        (audit(0.01, 0.03), True, "audit passed"),
        (audit(0.05, 0.05), True, "audit passed"),  # the margins are inclusive
        (audit(0.06, 0.0), False, "forget-set accuracy"),
        (audit(0.0, 0.2), False, "attack member rate"),
        (audit(0.0, 0.2, trusted=False), True, "attack untrusted"),
        (audit(None, None), False, "no retrain baseline"),
    ],
)
def test_audit_verdict(metrics: dict[str, Any], passed: bool, fragment: str) -> None:
    ok, reason = audit_verdict(metrics, GATE)
    assert ok is passed and fragment in reason


def _served(root: Path, before: Path, seed: int, metrics: dict[str, Any]) -> Path:
    """A stand-in for `selfsup unlearn`'s output, served on the model in ``before``."""
    manifest = json.loads((before / "manifest.json").read_text())
    model_dir(root / "encoder", seed)
    request = {
        "ids_sha256": "ab" * 32,
        "ids_count": 2,
        "served": "2026-11-27T00:00:00+00:00",
        "method": "laf+r",
        "dataset": manifest["data"],
        "model_before": {"encoder": manifest["content_hash"], "head": "fitted"},
    }
    (root / "request.json").write_text(json.dumps(request))
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root


def test_unlearned_model_replaces_the_champion_only_after_a_passing_audit(tmp_path: Path) -> None:
    registry = Registry(ArtifactStore(LocalBackend(tmp_path / "registry")))
    original = model_dir(tmp_path / "original", 0)
    evaluated = tmp_path / "evaluation.json"
    evaluated.write_text(json.dumps(evaluation(rankme=10.0, knn=0.5)))

    failing = _served(tmp_path / "failing", original, 1, audit(0.3, 0.0))
    with pytest.raises(SelfsupError, match="no champion"):
        register_unlearned(registry, failing, evaluated, GATE, {})
    champion = registry.register(original, evaluation(rankme=10.0, knn=0.6), {})
    registry.promote(champion["id"], GATE, force="first")

    kept = register_unlearned(registry, failing, evaluated, GATE, {})
    assert (kept["action"], kept["audit_passed"]) == ("keep", False)
    assert registry.aliases()["champion"] == champion["id"]

    passing = _served(tmp_path / "passing", original, 2, audit(0.01, 0.0))
    promoted = register_unlearned(registry, passing, evaluated, GATE, {"source": "test"})
    assert (promoted["action"], promoted["audit_passed"]) == ("promote", True)
    assert registry.aliases()["champion"] == promoted["model"] != champion["id"]
    lineage = registry.record("champion")["lineage"]
    assert lineage["deletion_request"]["ids_sha256"] == "ab" * 32
    assert lineage["parent"] == champion["id"] and lineage["source"] == "test"
    # Lower metrics than the old champion did not matter: forgetting may cost accuracy.

    stale = _served(tmp_path / "stale", original, 3, audit(0.0, 0.0))
    with pytest.raises(SelfsupError, match="serve it again"):
        register_unlearned(registry, stale, evaluated, GATE, {})
