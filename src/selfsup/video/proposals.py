"""Moving-object proposals: background subtraction → connected components → area bounds → NMS.

A static camera makes "what moves" a cheap object prior (Wang et al. use the same idea with
improved dense trajectories). OpenCV's MOG2 models each pixel's background as a Gaussian mixture,
so slow lighting changes are absorbed while objects stand out; a morphological open/close removes
speckle and fills holes before connected components; boxes outside the area bounds are dropped and
overlapping ones merged by ``torchvision.ops.nms`` (score: area, so the larger box survives).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops import nms


class MotionProposer:
    """Stateful: feed every frame in order with :meth:`update`; ask for boxes when wanted."""

    def __init__(
        self,
        min_area: float,
        max_area: float,
        nms_iou: float,
        max_proposals: int,
        history: int = 200,
    ) -> None:
        self.min_area = min_area
        self.max_area = max_area
        self.nms_iou = nms_iou
        self.max_proposals = max_proposals
        self._model = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=12, detectShadows=False
        )
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        # A wide closing joins the parts of an object whose interior the model has partly
        # absorbed (slow objects overlap their own past positions) — measured on synthetic video.
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))

    def update(self, frame: np.ndarray) -> np.ndarray:
        """Learn from ``frame`` (BGR or gray uint8) and return its cleaned foreground mask."""
        mask = self._model.apply(frame)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close, iterations=3)

    def boxes(self, mask: np.ndarray, gray: np.ndarray | None = None) -> torch.Tensor:
        """Proposal boxes ``float32 [K,4]`` (x1, y1, x2, y2; pixels of ``mask``), largest first."""
        return boxes_from_mask(mask, self.min_area, self.max_area, self.nms_iou, self.max_proposals)


def boxes_from_mask(
    mask: np.ndarray, min_area: float, max_area: float, nms_iou: float, max_proposals: int
) -> torch.Tensor:
    """Connected components of a binary mask as boxes within the area bounds, after NMS."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(
        (mask > 0).astype(np.uint8), connectivity=8
    )
    frame_area = float(mask.shape[0] * mask.shape[1])
    rows = []
    for label in range(1, count):  # 0 is the background
        x, y, w, h, _ = (int(v) for v in stats[label])
        if min_area <= w * h / frame_area <= max_area:
            rows.append((x, y, x + w, y + h))
    if not rows:
        return torch.zeros((0, 4), dtype=torch.float32)
    boxes = torch.tensor(rows, dtype=torch.float32)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = nms(boxes, areas, nms_iou)[:max_proposals]
    return boxes[keep]
