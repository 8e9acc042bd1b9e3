"""The mined graph on disk: a node table and a typed edge list, as two CSV files.

Node ``i`` is row ``i`` of the dataset's ``train`` split (its patch). Columns: the video, the frame
index in that video file, the box in original pixels, the (global) track id, and — for synthetic
video only — the ground-truth instance and class (-1 when unknown). Edges are undirected, stored
once with ``src < dst``, typed ``intra`` (same track, far apart in time), ``inter`` (same tight
cluster, other track) or ``transitive`` (derived, see :mod:`selfsup.mining.transitive`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfsup.errors import DataError
from selfsup.store import atomic_write_bytes

EDGE_TYPES = ("intra", "inter", "transitive")
NODES_FILE = "graph/nodes.csv"
EDGES_FILE = "graph/edges.csv"
_NODE_COLUMNS = [
    "node",
    "video",
    "frame",
    "x1",
    "y1",
    "x2",
    "y2",
    "track",
    "gt_instance",
    "gt_class",
]


@dataclass(frozen=True)
class Graph:
    """Nodes (parallel arrays, length N) and edges ``int64 [E,2]`` with their type names."""

    videos: list[str]
    frames: np.ndarray
    boxes: np.ndarray
    tracks: np.ndarray
    gt_instance: np.ndarray
    gt_class: np.ndarray
    edges: np.ndarray
    edge_types: list[str]

    @property
    def num_nodes(self) -> int:
        return len(self.videos)

    def edges_of(self, kind: str) -> np.ndarray:
        """The ``[E,2]`` edges of one type."""
        mask = np.array([t == kind for t in self.edge_types], dtype=bool)
        return self.edges[mask] if len(mask) else np.zeros((0, 2), np.int64)

    def counts(self) -> dict[str, int]:
        return {kind: int(sum(t == kind for t in self.edge_types)) for kind in EDGE_TYPES}


def _csv(rows: list[list[object]], header: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write_graph(root: Path, graph: Graph) -> None:
    """Write ``graph/nodes.csv`` and ``graph/edges.csv`` under ``root`` (atomically, each)."""
    nodes = [
        [
            i,
            graph.videos[i],
            int(graph.frames[i]),
            *(round(float(v), 2) for v in graph.boxes[i]),
            int(graph.tracks[i]),
            int(graph.gt_instance[i]),
            int(graph.gt_class[i]),
        ]
        for i in range(graph.num_nodes)
    ]
    edges = [[int(a), int(b), t] for (a, b), t in zip(graph.edges, graph.edge_types, strict=True)]
    atomic_write_bytes(Path(root) / NODES_FILE, _csv(nodes, _NODE_COLUMNS))
    atomic_write_bytes(Path(root) / EDGES_FILE, _csv(edges, ["src", "dst", "type"]))


def read_graph(root: Path) -> Graph:
    """Read the graph of a mined dataset directory (checksums are the manifest's job)."""
    root = Path(root)
    if not (root / NODES_FILE).is_file() or not (root / EDGES_FILE).is_file():
        raise DataError(
            f"{root} holds no mined graph ({NODES_FILE}, {EDGES_FILE}): run selfsup mine"
        )
    with open(root / NODES_FILE, newline="") as handle:
        nodes = list(csv.DictReader(handle))
    with open(root / EDGES_FILE, newline="") as handle:
        edges = list(csv.DictReader(handle))
    bad = {e["type"] for e in edges} - set(EDGE_TYPES)
    if bad:
        raise DataError(f"{root / EDGES_FILE}: unknown edge types {sorted(bad)}")
    return Graph(
        videos=[n["video"] for n in nodes],
        frames=np.array([int(n["frame"]) for n in nodes], np.int64),
        boxes=np.array(
            [[float(n[k]) for k in ("x1", "y1", "x2", "y2")] for n in nodes], np.float32
        ).reshape(-1, 4),
        tracks=np.array([int(n["track"]) for n in nodes], np.int64),
        gt_instance=np.array([int(n["gt_instance"]) for n in nodes], np.int64),
        gt_class=np.array([int(n["gt_class"]) for n in nodes], np.int64),
        edges=np.array([[int(e["src"]), int(e["dst"])] for e in edges], np.int64).reshape(-1, 2),
        edge_types=[e["type"] for e in edges],
    )


def positive_pairs(graph: Graph) -> np.ndarray:
    """Every edge of every type as a positive pair ``int64 [E,2]`` (the triplet loss's input)."""
    return graph.edges.copy()
