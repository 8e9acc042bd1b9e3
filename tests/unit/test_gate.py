"""The promotion gate against hand-worked cases."""

from __future__ import annotations

from typing import Any

import pytest

from selfsup.config import RegistryParams
from selfsup.errors import SelfsupError
from selfsup.registry.gate import gate

PARAMS = RegistryParams(knn_margin=0.01, rankme_margin=2.0)


def metrics(rankme: float, knn: float | None = None) -> dict[str, Any]:
    trained: dict[str, float] = {"rankme": rankme}
    if knn is not None:
        trained["knn_top1"] = knn
    return {"labeled": knn is not None, "trained": trained}


def test_first_model_becomes_champion() -> None:
    result = gate(metrics(10.0, 0.5), None, PARAMS)
    assert result.promote and "no champion" in result.reason


@pytest.mark.parametrize(
    ("candidate", "champion", "promote"),
    [
        (metrics(13.0, 0.62), metrics(10.0, 0.60), True),  # +3 rankme, +0.02 knn
        (metrics(12.0, 0.61), metrics(10.0, 0.60), True),  # exactly at both margins
        (metrics(13.0, 0.605), metrics(10.0, 0.60), False),  # knn gain 0.005 < 0.01
        (metrics(11.0, 0.70), metrics(10.0, 0.60), False),  # rankme gain 1 < 2
        (metrics(13.0), metrics(10.0, 0.60), True),  # unlabeled candidate: rankme only
        (metrics(11.5), metrics(10.0), False),
    ],
)
def test_margins_decide(candidate: dict[str, Any], champion: dict[str, Any], promote: bool) -> None:
    result = gate(candidate, champion, PARAMS)
    assert result.promote is promote
    # independent recomputation of every check the gate made
    for check in result.checks:
        metric = check.metric
        assert check.candidate == candidate["trained"][metric]
        assert check.champion == champion["trained"][metric]
        margin = PARAMS.knn_margin if metric == "knn_top1" else PARAMS.rankme_margin
        assert check.passed is (
            candidate["trained"][metric] - champion["trained"][metric] >= margin - 1e-12
        )
    labeled = "knn_top1" in candidate["trained"] and "knn_top1" in champion["trained"]
    assert [c.metric for c in result.checks] == (["knn_top1"] if labeled else []) + ["rankme"]
    assert ("kNN not compared" in result.reason) is (not labeled)
    assert result.reason.startswith("promote" if promote else "keep the champion")


def test_metrics_without_rankme_are_refused() -> None:
    with pytest.raises(SelfsupError, match=r"trained\.rankme"):
        gate({"trained": {}}, None, PARAMS)
