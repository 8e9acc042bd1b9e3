"""The promotion gate: does a candidate beat the champion by the configured margins?

Both inputs are ``selfsup evaluate`` metrics (``reports/evaluate.json``). RankMe (the effective
rank of the embeddings) needs no labels, so scheduled retraining on unlabeled data still has a
gate; kNN top-1 joins when both models were evaluated on labeled data. A candidate is promoted
only when every applicable check passes; the reason lists each check with its numbers, so a
decision can be audited later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfsup.config import GateParams
from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class Check:
    metric: str
    candidate: float
    champion: float
    margin: float

    @property
    def gain(self) -> float:
        return self.candidate - self.champion

    @property
    def passed(self) -> bool:
        return self.gain >= self.margin

    def describe(self) -> str:
        verdict = "ok" if self.passed else "too small"
        return (
            f"{self.metric} {self.candidate:.4f} vs {self.champion:.4f} "
            f"(gain {self.gain:+.4f}, needs ≥ {self.margin:+.4f}: {verdict})"
        )


@dataclass(frozen=True)
class GateResult:
    promote: bool
    reason: str
    checks: tuple[Check, ...] = ()


def _trained(metrics: dict[str, Any], key: str) -> float | None:
    value = (metrics.get("trained") or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def gate(
    candidate: dict[str, Any], champion: dict[str, Any] | None, params: GateParams
) -> GateResult:
    """Decide whether ``candidate`` replaces ``champion`` (``None``: there is none yet)."""
    if _trained(candidate, "rankme") is None:
        raise SelfsupError("the candidate's metrics have no trained.rankme: run selfsup evaluate")
    if champion is None:
        return GateResult(True, "no champion yet: the first model becomes champion")
    checks = []
    knn_note = ""
    cand_knn, champ_knn = _trained(candidate, "knn_top1"), _trained(champion, "knn_top1")
    if cand_knn is not None and champ_knn is not None:
        checks.append(Check("knn_top1", cand_knn, champ_knn, params.knn_margin))
    else:
        knn_note = "; kNN not compared (labels missing for one or both models)"
    champ_rank = _trained(champion, "rankme")
    if champ_rank is None:
        raise SelfsupError("the champion's recorded metrics have no trained.rankme")
    checks.append(
        Check(
            "rankme", float(_trained(candidate, "rankme") or 0.0), champ_rank, params.rankme_margin
        )
    )
    promote = all(c.passed for c in checks)
    head = "promote" if promote else "keep the champion"
    return GateResult(
        promote, f"{head}: " + "; ".join(c.describe() for c in checks) + knn_note, tuple(checks)
    )
