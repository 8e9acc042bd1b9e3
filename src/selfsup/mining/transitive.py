"""Transitivity (Wang, He, Gupta, ICCV 2017): new positives across instances *and* viewpoints.

An inter edge A–B says "similar category and viewpoint"; intra edges A–A′ and B–B′ say "same
instance, another viewpoint". Their composition ⟨A,B′⟩, ⟨A′,B⟩, ⟨A′,B′⟩ pairs different instances
seen from different viewpoints — the invariance neither edge type teaches alone.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def _canonical(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def transitive_pairs(intra: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """Pairs implied by one inter edge plus the intra neighbours of its ends, ``int64 [M,2]``.

    For each inter edge (A, B) with intra neighbours A′ ∈ N(A), B′ ∈ N(B): ⟨A,B′⟩, ⟨A′,B⟩ and
    ⟨A′,B′⟩. Self-pairs and pairs that already are intra or inter edges are left out; the result
    is deduplicated, each pair stored as (min, max), sorted.
    """
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in intra.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    existing = {_canonical(a, b) for a, b in np.concatenate([intra, inter]).tolist()}
    found: set[tuple[int, int]] = set()
    for a, b in inter.tolist():
        ends_a = {a} | neighbours[a]
        ends_b = {b} | neighbours[b]
        for u in ends_a:
            for v in ends_b:
                pair = _canonical(u, v)
                if u != v and (u, v) != (a, b) and pair not in existing:
                    found.add(pair)
    if not found:
        return np.zeros((0, 2), np.int64)
    return np.array(sorted(found), np.int64)
