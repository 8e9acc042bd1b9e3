"""A contact sheet of mined positive pairs: rows of a few pairs each, grouped by edge type."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfsup.mining.graph import EDGE_TYPES, Graph
from selfsup.observe.image_grid import labelled_grid, write_png

# Pairs side by side in one row: a sheet about 900 px wide whose rows a person reads at a glance
# (one pair per row made a 200 px wide, 3,000 px tall strip).
PAIRS_PER_ROW = 4


def contact_sheet(graph: Graph, patches: np.ndarray, path: Path, per_type: int, seed: int) -> int:
    """Write a PNG of up to ``per_type`` random pairs per edge type; returns pairs drawn.

    ``patches`` is RGB uint8 ``[N,P,P,3]``. Each edge type starts a new row, labelled with the
    type on the left; a row holds up to :data:`PAIRS_PER_ROW` pairs, patch A then patch B
    (upscaled, nearest-neighbour, to ≥ 96 px), captioned ``#k a`` and ``#k b`` with their node
    ids in ``graph/nodes.csv`` (k numbers the pair within its row). A short row is padded with
    blank tiles.
    """
    rng = np.random.default_rng(seed)
    blank = np.full_like(patches[0], 255) if len(patches) else None
    tiles: list[np.ndarray] = []
    captions: list[str] = []
    labels: list[str] = []
    drawn = 0
    for kind in EDGE_TYPES:
        edges = graph.edges_of(kind)
        pick = rng.permutation(len(edges))[:per_type]
        for start in range(0, len(pick), PAIRS_PER_ROW):
            labels.append(kind)
            for k in range(PAIRS_PER_ROW):
                if start + k < len(pick):
                    a, b = (int(v) for v in edges[pick[start + k]])
                    tiles += [patches[a], patches[b]]
                    captions += [f"#{k + 1} {a}", f"#{k + 1} {b}"]
                    drawn += 1
                else:
                    assert blank is not None
                    tiles += [blank, blank]
                    captions += ["", ""]
    title = (
        f"mined pairs: up to {per_type} per edge type; #k a, #k b: pair k's node ids"
        if drawn
        else "no mined pairs"
    )
    columns = 2 * PAIRS_PER_ROW
    sheet = labelled_grid(tiles, captions, columns, row_labels=labels, title=title)
    write_png(sheet, Path(path))
    return drawn
