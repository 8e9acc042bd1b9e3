"""A contact sheet of mined positive pairs: one row per pair, grouped by edge type."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from selfsup.mining.graph import EDGE_TYPES, Graph
from selfsup.store import atomic_write_bytes

_SCALE = 2
_LABEL_W = 80


def contact_sheet(graph: Graph, patches: np.ndarray, path: Path, per_type: int, seed: int) -> int:
    """Write a PNG of up to ``per_type`` random pairs per edge type; returns pairs drawn.

    ``patches`` is RGB uint8 ``[N,P,P,3]``. Columns: type label, patch A, patch B.
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, int, int]] = []
    for kind in EDGE_TYPES:
        edges = graph.edges_of(kind)
        pick = rng.permutation(len(edges))[:per_type]
        rows.extend((kind, int(edges[i, 0]), int(edges[i, 1])) for i in pick)
    side = patches.shape[1] * _SCALE if len(patches) else 32
    sheet = Image.new("RGB", (_LABEL_W + 2 * side + 12, max(1, len(rows)) * (side + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (kind, a, b) in enumerate(rows):
        y = r * (side + 4)
        draw.text((4, y + side // 2 - 5), kind, fill="black")
        for c, node in enumerate((a, b)):
            tile = Image.fromarray(patches[node]).resize((side, side), Image.Resampling.NEAREST)
            sheet.paste(tile, (_LABEL_W + c * (side + 6), y))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return len(rows)
