"""k-means recovers well-separated blobs; cluster edges match an explicit enumeration."""

from __future__ import annotations

import itertools

import numpy as np

from selfsup.mining.cluster import NodeInfo, cluster_edges, inter_edges, kmeans, l2_normalise


def test_kmeans_recovers_separated_blobs() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8) * 10
    truth = np.repeat(np.arange(4), 5)
    points = centres[truth] + rng.normal(0, 0.1, (20, 8))
    labels = kmeans(points, 4, seed=0)
    # Same partition up to renaming: co-membership matrices agree.
    assert np.array_equal(labels[:, None] == labels[None], truth[:, None] == truth[None])
    assert np.array_equal(labels, kmeans(points, 4, seed=0)), "seeded: deterministic"


def test_cluster_edges_match_explicit_enumeration() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, 40)
    groups = rng.integers(0, 15, 40)
    nodes = np.arange(100, 140)
    got = {tuple(map(int, r)) for r in cluster_edges(labels, groups, 2, 8, nodes)}
    expected = set()
    for c in set(labels.tolist()):
        members = [i for i in range(40) if labels[i] == c]
        if 2 <= len(members) <= 8:
            for i, j in itertools.combinations(members, 2):
                if groups[i] != groups[j]:
                    expected.add((int(nodes[i]), int(nodes[j])))
    assert got == expected
    assert all(a < b for a, b in got)


def test_l2_normalise_gives_unit_rows() -> None:
    x = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(x[0], [0.6, 0.8]) and np.all(np.isfinite(x))


def _nodes(rng: np.random.Generator, n: int) -> NodeInfo:
    xy = rng.uniform(0, 100, (n, 2))
    return NodeInfo(
        tracks=rng.integers(0, 12, n),
        videos=rng.integers(0, 3, n),
        seconds=rng.uniform(0, 10, n),
        boxes=np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1),
    )


def test_inter_edges_never_join_one_track_or_overlapping_nodes_of_one_video() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 8, 60)
    nodes = _nodes(rng, 60)
    for cross_video_only in (False, True):
        got = {
            tuple(map(int, r))
            for r in inter_edges(labels, nodes, 2, 8, window=2.0, cross_video_only=cross_video_only)
        }
        expected = set()  # reference: an explicit loop with the rules spelled out
        for c in set(labels.tolist()):
            members = [i for i in range(60) if labels[i] == c]
            if not 2 <= len(members) <= 8:
                continue
            for i, j in itertools.combinations(members, 2):
                if nodes.tracks[i] == nodes.tracks[j]:
                    continue
                if nodes.videos[i] == nodes.videos[j]:
                    if cross_video_only:
                        continue
                    a, b = nodes.boxes[i], nodes.boxes[j]
                    overlap = min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(
                        a[1], b[1]
                    )
                    if overlap and abs(nodes.seconds[i] - nodes.seconds[j]) <= 2.0:
                        continue
                expected.add((i, j))
        assert got == expected and len(got) > 0
        edges = np.array(sorted(got))
        assert np.all(nodes.tracks[edges[:, 0]] != nodes.tracks[edges[:, 1]])
        if cross_video_only:
            assert np.all(nodes.videos[edges[:, 0]] != nodes.videos[edges[:, 1]])
