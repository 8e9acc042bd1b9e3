"""Inter-instance edges: many small, tight clusters of patch embeddings.

Following the paper, k-means with K ≈ N/4 over L2-normalised features (so Euclidean distance
orders pairs like cosine similarity) and only clusters of 2–8 members are kept: large clusters are
loose, singletons say nothing. Members of a kept cluster are linked unless they may be one object
(issue 17): never two nodes of one track (that relation is the intra edge's), never two nodes of
one video whose boxes overlap within ``window`` seconds, and, optionally, never two nodes of one
video at all (the paper's "different videos"). ``cv2.kmeans`` with k-means++ seeding, seeded
through ``cv2.setRNGSeed``, makes the clustering deterministic.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np


def kmeans(features: np.ndarray, k: int, seed: int, attempts: int = 3) -> np.ndarray:
    """Cluster label per row of ``features`` (float [N,D]); ``k`` is clamped to [1, N]."""
    data = np.ascontiguousarray(features, dtype=np.float32)
    k = int(min(max(k, 1), len(data)))
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    best = np.zeros((len(data), 1), np.int32)
    _, labels, _ = cv2.kmeans(data, k, best, criteria, attempts, cv2.KMEANS_PP_CENTERS)
    return np.asarray(labels, np.int64).ravel()


def l2_normalise(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.asarray(features / np.maximum(norms, 1e-12), np.float32)


def cluster_edges(
    labels: np.ndarray, groups: np.ndarray, size_min: int, size_max: int, nodes: np.ndarray
) -> np.ndarray:
    """Pairs ``(nodes[i], nodes[j])`` of one cluster of size in [size_min, size_max], other group.

    ``labels[i]`` is the cluster and ``groups[i]`` the track of ``nodes[i]``; output ``int64
    [E,2]`` with ``src < dst``, sorted.
    """
    pairs: set[tuple[int, int]] = set()
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        if not size_min <= len(members) <= size_max:
            continue
        for i, j in itertools.combinations(members.tolist(), 2):
            if groups[i] != groups[j]:
                a, b = int(nodes[i]), int(nodes[j])
                pairs.add((min(a, b), max(a, b)))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    return np.array(sorted(pairs), np.int64)


@dataclass(frozen=True)
class NodeInfo:
    """What decides whether two nodes may show one object: parallel arrays of length N."""

    tracks: np.ndarray  # int, global track id
    videos: np.ndarray  # int, video id
    seconds: np.ndarray  # float, time in the video
    boxes: np.ndarray  # float [N,4]


def may_be_one_object(
    nodes: NodeInfo, a: np.ndarray, b: np.ndarray, window: float, cross_video_only: bool
) -> np.ndarray:
    """``bool [E]`` for pairs ``(a[e], b[e])``: true where the pair must not be an inter edge.

    Same node or same track; or same video and (``cross_video_only``, or |Δt| ≤ ``window`` s
    with overlapping boxes, IoU > 0).
    """
    same_track = (a == b) | (nodes.tracks[a] == nodes.tracks[b])
    same_video = nodes.videos[a] == nodes.videos[b]
    if cross_video_only:
        return np.asarray(same_track | same_video)
    near = np.abs(nodes.seconds[a] - nodes.seconds[b]) <= window
    ba, bb = nodes.boxes[a], nodes.boxes[b]
    inter_w = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    inter_h = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    overlap = (inter_w > 0) & (inter_h > 0)
    return np.asarray(same_track | (same_video & near & overlap))


def inter_edges(
    labels: np.ndarray,
    nodes: NodeInfo,
    size_min: int,
    size_max: int,
    window: float,
    cross_video_only: bool,
) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of one cluster of size in [size_min, size_max] that
    :func:`may_be_one_object` allows; ``int64 [E,2]``, sorted."""
    pairs: list[tuple[int, int]] = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        if size_min <= len(members) <= size_max:
            pairs.extend(itertools.combinations(sorted(members.tolist()), 2))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    found = np.array(sorted(pairs), np.int64)
    banned = may_be_one_object(nodes, found[:, 0], found[:, 1], window, cross_video_only)
    kept: np.ndarray = found[~banned].reshape(-1, 2)
    return kept
