"""Quality of a mined graph against synthetic ground truth.

A node is matched to the ground-truth object whose box overlaps it most at its frame (IoU ≥ 0.5;
otherwise unmatched, -1). Edge precisions count only edges with both ends matched and say how many
were. Chance for "same class" is 1/C for balanced classes and Σ p_c² for the observed class
shares; both are reported.

Inter edges and transitive pairs are meant to join *different* instances (issue 17): an edge
between two views of one object is counted apart (``same_instance``, a share of the matched edges)
and never as correct — ``precision`` is "same class, other instance" over all matched edges, and
``precision_among_different`` the same over the matched edges between different instances.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from selfsup.mining.graph import Graph

MATCH_IOU = 0.5


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes ``[N,4]`` × ``[M,4]`` (x1,y1,x2,y2)."""
    from torchvision.ops import box_iou  # on first use: torchvision takes ~1 s to import

    out: np.ndarray = box_iou(
        torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    ).numpy()
    return out


def match(box: np.ndarray, truth_boxes: np.ndarray) -> tuple[int, float]:
    """Index of the best-overlapping truth box and its IoU (-1, 0.0 when below MATCH_IOU)."""
    if len(truth_boxes) == 0:
        return -1, 0.0
    overlaps = iou(box[None], truth_boxes)[0]
    best = int(overlaps.argmax())
    return (best, float(overlaps[best])) if overlaps[best] >= MATCH_IOU else (-1, 0.0)


def track_iou(
    track_frames: list[list[int]], track_boxes: list[np.ndarray], truth: list[np.ndarray]
) -> dict[str, float]:
    """Mean IoU of tracks with the object they start on, and the share still > 0.5 at the end.

    ``truth[t]`` is the ``[K,4]`` truth of the track's video at frame ``t``; a track is assigned
    the truth object of highest IoU at its first frame (any overlap) and followed against it.
    """
    per_frame: list[float] = []
    last_ok = 0
    for frames, boxes, gt in zip(track_frames, track_boxes, truth, strict=True):
        start = iou(boxes[:1], gt[frames[0]])[0]
        target = int(start.argmax())
        values = [
            float(iou(boxes[i : i + 1], gt[f][target : target + 1])[0, 0])
            for i, f in enumerate(frames)
        ]
        per_frame.extend(values)
        last_ok += values[-1] > 0.5
    count = len(track_frames)
    return {
        "track_iou_mean": float(np.mean(per_frame)) if per_frame else 0.0,
        "track_last_iou_above_0_5": last_ok / count if count else 0.0,
        "tracks": float(count),
    }


def _same(edges: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if len(edges) == 0:
        return {"precision": 0.0, "matched": 0.0, "edges": 0.0}
    a, b = labels[edges[:, 0]], labels[edges[:, 1]]
    matched = (a >= 0) & (b >= 0)
    hits = (a == b) & matched
    return {
        "precision": float(hits.sum() / matched.sum()) if matched.any() else 0.0,
        "matched": float(matched.mean()),
        "edges": float(len(edges)),
    }


def across_instances(
    edges: np.ndarray, instances: np.ndarray, classes: np.ndarray
) -> dict[str, float]:
    """Quality of edges meant to join different instances of one class (inter, transitive).

    Over the edges with both ends matched (``matched``: their share of all edges):
    ``same_instance`` is the share joining one object (never correct), ``precision`` the share
    joining the same class *and* different instances, ``precision_among_different`` that count
    over the edges between different instances.
    """
    if len(edges) == 0:
        return {
            "precision": 0.0,
            "precision_among_different": 0.0,
            "same_instance": 0.0,
            "matched": 0.0,
            "edges": 0.0,
        }
    ia, ib = instances[edges[:, 0]], instances[edges[:, 1]]
    matched = (ia >= 0) & (ib >= 0)
    same = matched & (ia == ib)
    different = matched & (ia != ib)
    hits = different & (classes[edges[:, 0]] == classes[edges[:, 1]])
    n = max(int(matched.sum()), 1)
    return {
        "precision": float(hits.sum() / n) if matched.any() else 0.0,
        "precision_among_different": float(hits.sum() / different.sum())
        if different.any()
        else 0.0,
        "same_instance": float(same.sum() / n) if matched.any() else 0.0,
        "matched": float(matched.mean()),
        "edges": float(len(edges)),
    }


def graph_quality(graph: Graph, classes: int) -> dict[str, Any]:
    """Intra-edge instance purity, inter/transitive same-class precision, next to chance."""
    known = graph.gt_class[graph.gt_class >= 0]
    shares = np.bincount(known, minlength=classes) / max(len(known), 1)
    return {
        "intra_instance_purity": _same(graph.edges_of("intra"), graph.gt_instance),
        "inter_same_class_precision": across_instances(
            graph.edges_of("inter"), graph.gt_instance, graph.gt_class
        ),
        "transitive_same_class_precision": across_instances(
            graph.edges_of("transitive"), graph.gt_instance, graph.gt_class
        ),
        "chance_same_class_uniform": 1.0 / classes,
        "chance_same_class_observed": float((shares**2).sum()),
        "nodes_matched": float((graph.gt_instance >= 0).mean()) if graph.num_nodes else 0.0,
    }
