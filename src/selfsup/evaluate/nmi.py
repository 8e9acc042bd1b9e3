"""Normalised mutual information between two labelings (how well clusters match classes).

NMI = I(U;V) / mean(H(U), H(V)) with the arithmetic mean (scikit-learn's default), in nats from
the contingency table. Written here rather than taking scikit-learn as a dependency for one
formula. 1 for labelings equal up to renaming, 0 for independent ones.
"""

from __future__ import annotations

import numpy as np


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalized_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """NMI of two integer labelings of the same items; 1.0 when both are a single cluster."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"labelings must be non-empty and equal in length: {a.size}, {b.size}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1.0)
    h_a, h_b = _entropy(table.sum(1)), _entropy(table.sum(0))
    if h_a == 0.0 and h_b == 0.0:
        return 1.0
    joint = table / table.sum()
    outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())
    return max(0.0, mutual / ((h_a + h_b) / 2))
