"""A terminal-sized summary of an evaluation: trained vs both floors, side by side.

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
    """Rows metric | trained | random init | raw pixels | gain over the stronger floor."""
    trained, random = metrics["trained"], metrics["random_init"]
    raw = metrics.get("raw_pixels", {})
    lines = [f"{'metric':<14}{'trained':>10}{'random init':>14}{'raw pixels':>12}{'gain':>10}"]
    for label, key in _ROWS:
        if key in trained and key in random:
            a, b = float(trained[key]), float(random[key])
            c = float(raw[key]) if key in raw else None
            # Higher is better except for ECE: the gain is over the stronger floor.
            floors = [b] + ([c] if c is not None else [])
            floor = min(floors) if key == "linear_ece" else max(floors)
            shown = f"{c:>12.4f}" if c is not None else f"{'-':>12}"
            lines.append(f"{label:<14}{a:>10.4f}{b:>14.4f}{shown}{a - floor:>+10.4f}")
    return "\n".join(lines)
