"""Inter-instance edges: many small, tight clusters of patch embeddings.

Following the paper, k-means with K ≈ N/4 over L2-normalised features (so Euclidean distance
orders pairs like cosine similarity) and only clusters of 2–8 members are kept: large clusters are
loose, singletons say nothing. Members of a kept cluster are linked unless they come from the same
track (that relation is the intra edge's). ``cv2.kmeans`` with k-means++ seeding, seeded through
``cv2.setRNGSeed``, makes the clustering deterministic.
"""

from __future__ import annotations

import itertools

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
