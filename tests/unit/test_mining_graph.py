"""Graph storage round trip and graph quality on a hand-built graph with known truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfsup.errors import DataError
from selfsup.mining.graph import Graph, read_graph, write_graph
from selfsup.mining.quality import across_instances, graph_quality, match


def _graph() -> Graph:
    # 6 nodes: tracks (0,1), (2,3), (4,5); instances 0,0 | 1,1 | 2,-1 (node 5 unmatched);
    # classes 0,0 | 0,0 | 1,-1.
    return Graph(
        videos=["a.avi"] * 4 + ["b.mp4"] * 2,
        frames=np.array([0, 11, 6, 17, 0, 11]),
        boxes=np.array([[0, 0, 10, 10]] * 6, np.float32) + np.arange(6, dtype=np.float32)[:, None],
        tracks=np.array([0, 0, 1, 1, 7, 7]),
        gt_instance=np.array([0, 0, 1, 1, 2, -1]),
        gt_class=np.array([0, 0, 0, 0, 1, -1]),
        edges=np.array([[0, 1], [2, 3], [4, 5], [0, 2], [0, 4], [1, 2], [1, 3], [1, 4]]),
        edge_types=["intra"] * 3 + ["inter"] * 2 + ["transitive"] * 3,
    )


def test_round_trip(tmp_path: Path) -> None:
    graph = _graph()
    write_graph(tmp_path, graph)
    back = read_graph(tmp_path)
    assert back.videos == graph.videos and back.edge_types == graph.edge_types
    for name in ("frames", "tracks", "gt_instance", "gt_class", "edges"):
        assert np.array_equal(getattr(back, name), getattr(graph, name)), name
    assert np.allclose(back.boxes, graph.boxes)
    assert back.counts() == {"intra": 3, "inter": 2, "transitive": 3}


def test_missing_graph_and_unknown_edge_type_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="selfsup mine"):
        read_graph(tmp_path)
    write_graph(tmp_path, _graph())
    edges = tmp_path / "graph" / "edges.csv"
    edges.write_text(edges.read_text().replace("inter", "bogus", 1))
    with pytest.raises(DataError, match="bogus"):
        read_graph(tmp_path)


def test_quality_by_hand() -> None:
    q = graph_quality(_graph(), classes=2)
    # intra: (0,1) same, (2,3) same, (4,5) unmatched → 2/2 over 2 of 3 matched
    assert q["intra_instance_purity"]["precision"] == 1.0
    assert q["intra_instance_purity"]["matched"] == pytest.approx(2 / 3)
    # inter: (0,2) class 0=0 ✓, (0,4) 0≠1 ✗ → 1/2
    assert q["inter_same_class_precision"]["precision"] == 0.5
    # transitive: (1,2) ✓, (1,3) ✓, (1,4) ✗ → 2/3
    assert q["transitive_same_class_precision"]["precision"] == pytest.approx(2 / 3)
    assert q["chance_same_class_uniform"] == 0.5
    # observed classes of matched nodes: 4 × class 0, 1 × class 1 → 0.8² + 0.2²
    assert q["chance_same_class_observed"] == pytest.approx(0.68)


def test_match_threshold() -> None:
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    assert match(np.array([21, 21, 31, 31], np.float32), truth)[0] == 1
    assert match(np.array([5, 5, 15, 15], np.float32), truth) == (-1, 0.0)  # IoU 1/7 < 0.5


def test_same_instance_edges_are_counted_apart_and_never_correct() -> None:
    rng = np.random.default_rng(0)
    instances = rng.integers(-1, 6, 40)
    classes = np.where(instances >= 0, instances % 3, -1)
    edges = rng.integers(0, 40, (300, 2))
    edges = edges[edges[:, 0] != edges[:, 1]]
    q = across_instances(edges, instances, classes)
    # Reference: an explicit loop over the edges.
    matched = same = hits = different = 0
    for a, b in edges.tolist():
        if instances[a] < 0 or instances[b] < 0:
            continue
        matched += 1
        if instances[a] == instances[b]:
            same += 1  # one object seen twice: never a correct inter pair
        else:
            different += 1
            hits += int(classes[a] == classes[b])
    assert same > 0 and q["same_instance"] == pytest.approx(same / matched)
    assert q["precision"] == pytest.approx(hits / matched)
    assert q["precision_among_different"] == pytest.approx(hits / different)
    assert q["matched"] == pytest.approx(matched / len(edges))
    only_same = np.array([[0, 1]])
    assert across_instances(only_same, np.array([3, 3]), np.array([0, 0]))["precision"] == 0.0
