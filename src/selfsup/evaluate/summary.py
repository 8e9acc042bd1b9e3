"""A terminal-sized summary of an evaluation: trained vs random-init, side by side.

``dvc metrics show`` flattens every key (per-class accuracies included) into one very wide row;
this is the few numbers a person reads first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_ROWS = (
    ("kNN top-1", "knn_top1"),
    ("linear top-1", "linear_top1"),
    ("linear ECE", "linear_ece"),
    ("RankMe", "rankme"),
)


def summary_table(metrics: Mapping[str, Any]) -> str:
    """Rows metric | trained | random init | gain for what ``metrics`` holds."""
    trained, floor = metrics["trained"], metrics["random_init"]
    lines = [f"{'metric':<14}{'trained':>10}{'random init':>14}{'gain':>10}"]
    for label, key in _ROWS:
        if key in trained and key in floor:
            a, b = float(trained[key]), float(floor[key])
            lines.append(f"{label:<14}{a:>10.4f}{b:>14.4f}{a - b:>+10.4f}")
    return "\n".join(lines)
