"""A contact sheet of mined positive pairs: one row per pair, grouped by edge type."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfsup.mining.graph import EDGE_TYPES, Graph
from selfsup.observe.image_grid import labelled_grid, write_png


def contact_sheet(graph: Graph, patches: np.ndarray, path: Path, per_type: int, seed: int) -> int:
    """Write a PNG of up to ``per_type`` random pairs per edge type; returns pairs drawn.

    ``patches`` is RGB uint8 ``[N,P,P,3]``. One row per pair: its edge type on the left, then
    patch A and patch B (upscaled, nearest-neighbour, to ≥ 96 px), each captioned with its node
    id in ``graph/nodes.csv``.
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, int, int]] = []
    for kind in EDGE_TYPES:
        edges = graph.edges_of(kind)
        pick = rng.permutation(len(edges))[:per_type]
        rows.extend((kind, int(edges[i, 0]), int(edges[i, 1])) for i in pick)
    tiles = [patches[node] for _, a, b in rows for node in (a, b)]
    captions = [f"node {node}" for _, a, b in rows for node in (a, b)]
    title = f"mined pairs: up to {per_type} per edge type" if rows else "no mined pairs"
    sheet = labelled_grid(tiles, captions, 2, row_labels=[k for k, _, _ in rows], title=title)
    write_png(sheet, Path(path))
    return len(rows)
