"""A terminal-sized summary of an evaluation: trained vs both floors, side by side.

``dvc metrics show`` flattens every key (per-class accuracies included) into one very wide row;
this is the few numbers a person reads first (also the headline on top of ``report.html``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ROWS = (
    ("kNN top-1", "knn_top1"),
    ("linear top-1", "linear_top1"),
    ("linear ECE", "linear_ece"),
    ("RankMe", "rankme"),
)


@dataclass(frozen=True)
class SummaryRow:
    """One metric: trained, the random-init and raw-pixel floors (``None``: not evaluated) and
    the trained encoder's gain over the stronger floor (for ECE, lower is better: the lower)."""

    label: str
    key: str
    trained: float
    random_init: float
    raw_pixels: float | None
    gain: float
    floor: str  # the stronger floor: "random_init" or "raw_pixels" (the first on a tie)


def summary_rows(metrics: Mapping[str, Any]) -> list[SummaryRow]:
    """The headline rows of ``metrics.json``: the terminal summary and the report's header."""
    trained, random = metrics["trained"], metrics["random_init"]
    raw = metrics.get("raw_pixels", {})
    rows = []
    for label, key in _ROWS:
        if key in trained and key in random:
            a, b = float(trained[key]), float(random[key])
            c = float(raw[key]) if key in raw else None
            floors = {"random_init": b} | ({"raw_pixels": c} if c is not None else {})
            pick = min if key == "linear_ece" else max
            floor = pick(floors, key=floors.__getitem__)
            rows.append(SummaryRow(label, key, a, b, c, a - floors[floor], floor))
    return rows


def summary_table(metrics: Mapping[str, Any]) -> str:
    """Rows metric | trained | random init | raw pixels | gain over the stronger floor."""
    lines = [f"{'metric':<14}{'trained':>10}{'random init':>14}{'raw pixels':>12}{'gain':>10}"]
    for row in summary_rows(metrics):
        c = row.raw_pixels
        shown = f"{c:>12.4f}" if c is not None else f"{'-':>12}"
        lines.append(
            f"{row.label:<14}{row.trained:>10.4f}{row.random_init:>14.4f}{shown}{row.gain:>+10.4f}"
        )
    return "\n".join(lines)
