"""Moving-object proposals: background subtraction → connected components → area bounds → NMS.

A static camera makes "what moves" a cheap object prior (Wang et al. use the same idea with
improved dense trajectories). OpenCV's MOG2 models each pixel's background as a Gaussian mixture,
so slow lighting changes are absorbed while objects stand out; a morphological open/close removes
speckle and fills holes before connected components; boxes outside the area bounds are dropped and
overlapping ones merged by ``torchvision.ops.nms`` (score: area, so the larger box survives).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch


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
    from torchvision.ops import nms  # on first use: torchvision takes ~1 s to import

    keep = nms(boxes, areas, nms_iou)[:max_proposals]
    return boxes[keep]


def estimate_homography(
    previous: np.ndarray,
    current: np.ndarray,
    max_corners: int = 1000,
    width: int | None = None,
) -> np.ndarray | None:
    """Global motion ``previous → current`` (gray uint8) as a 3×3 homography, or None.

    Corners of ``previous`` (Shi–Tomasi) are matched into ``current`` by pyramidal Lucas–Kanade
    and the homography is fitted by RANSAC (``cv2.findHomography``, 1 px), so the objects that
    move on their own are outliers and the background's motion — the camera's — remains.
    With ``width``, both frames are first downscaled to at most that many pixels wide (LK and
    RANSAC cost ∝ pixels and corners) and the homography found there is scaled back:
    ``H = S⁻¹ · H_small · S`` with ``S = diag(f, f, 1)``.
    """
    factor = 1.0
    if width is not None and previous.shape[1] > width:
        factor = width / previous.shape[1]
        previous = _downscale(previous, factor)
        current = _downscale(current, factor)
    found = _fit_homography(previous, current, max_corners)
    if found is None:
        return None
    return _finish_homography(found, factor, previous.shape[:2])


def _downscale(gray: np.ndarray, factor: float) -> np.ndarray:
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def _fit_homography(
    previous: np.ndarray,
    current: np.ndarray,
    max_corners: int,
    lk_window: int = 21,
    lk_levels: int = 3,
    refit: bool = True,
) -> np.ndarray | None:
    """LK-tracked Shi–Tomasi corners + RANSAC (1 px) + a least-squares refit on the inliers."""
    corners = cv2.goodFeaturesToTrack(previous, max_corners, 0.001, 5)
    if corners is None or len(corners) < 8:
        return None
    flow = cv2.calcOpticalFlowPyrLK  # its stubs want a nextPts array where None is documented
    moved, status, _ = flow(  # type: ignore[call-overload]
        previous, current, corners, None, winSize=(lk_window, lk_window), maxLevel=lk_levels
    )
    ok = status.ravel() == 1
    if ok.sum() < 8:
        return None
    homography, inliers = cv2.findHomography(corners[ok], moved[ok], cv2.RANSAC, 1.0)
    if homography is None:
        return None
    # Refit on the inliers by least squares: RANSAC's minimal-sample model is noisier.
    keep = inliers.ravel() == 1
    if refit and keep.sum() >= 8:
        refit, _ = cv2.findHomography(corners[ok][keep], moved[ok][keep], 0)
        homography = refit if refit is not None else homography
    return np.asarray(homography, np.float64)


def _finish_homography(homography: np.ndarray, factor: float, shape: tuple[int, ...]) -> np.ndarray:
    """Scale a homography found at ``factor`` back to full pixels; ~identity → exactly identity."""
    if factor != 1.0:
        scale = np.diag([factor, factor, 1.0])
        homography = np.linalg.inv(scale) @ homography @ scale
        homography = homography / homography[2, 2]
    # A static camera: below a quarter pixel at the frame's corners (full pixels), chaining noise
    # would only accumulate into a skew.
    h, w = (round(shape[0] / factor), round(shape[1] / factor))
    box = np.array([[[0, 0]], [[w, 0]], [[0, h]], [[w, h]]], np.float64)
    shift = np.abs(cv2.perspectiveTransform(box, homography) - box).max()
    return np.eye(3) if shift < 0.25 else homography


def median_u8(frames: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of uint8 frames, as ``np.median(..., axis=0).astype(np.uint8)`` gives it.

    The frames are stacked on the last axis (contiguous per pixel) and partitioned there, which
    is several times faster than a median over a leading axis; an even count averages the two
    middle values, rounded down, as the float median's cast does.
    """
    stack = np.stack(frames, axis=-1)
    n = stack.shape[-1]
    if n % 2:
        out: np.ndarray = np.partition(stack, n // 2, axis=-1)[..., n // 2]
        return out
    part = np.partition(stack, (n // 2 - 1, n // 2), axis=-1)
    low = part[..., n // 2 - 1].astype(np.uint16)
    return ((low + part[..., n // 2]) // 2).astype(np.uint8)


class CompensatedProposer:
    """Moving-object proposals under a moving camera (pan, zoom, shake).

    Every frame the global motion from the previous one is estimated
    (:func:`estimate_homography`) and chained, so each of the last ``samples`` kept frames (one
    every ``every`` frames) is known in the current frame's coordinates. At a keyframe those are
    warped onto the current frame and their per-pixel median is the background (an object that
    moves is in few of them, so the median drops it); pixels differing from it by more than
    ``threshold`` grey levels are foreground, then cleaned and boxed as :class:`MotionProposer`
    does. Proposals whose patch still matches the background (normalised cross-correlation ≥
    ``background_ncc``) are dropped: that is background texture a warp did not align exactly.
    """

    def __init__(
        self,
        min_area: float,
        max_area: float,
        nms_iou: float,
        max_proposals: int,
        every: int = 4,
        samples: int = 6,
        threshold: float = 20.0,
        background_ncc: float = 0.6,
        motion_width: int | None = 160,
        max_corners: int = 1000,
        refine: bool = True,
        small_refine: bool = False,
        polygon_valid: bool = False,
        skip_static: bool = True,
        lk_window: int = 21,
        lk_levels: int = 3,
        refit: bool = True,
        sparse: bool = False,
        fast_median: bool = True,
    ) -> None:
        self.min_area, self.max_area = min_area, max_area
        self.nms_iou, self.max_proposals = nms_iou, max_proposals
        self.every, self.samples = every, samples
        self.threshold, self.background_ncc = threshold, background_ncc
        self.motion_width, self.max_corners, self.refine = motion_width, max_corners, refine
        self.small_refine, self.polygon_valid = small_refine, polygon_valid
        self.skip_static = skip_static
        self._lk = (lk_window, lk_levels, refit)
        self.sparse, self.fast_median = sparse, fast_median
        # gray, its downscaled copy for motion estimation, homography → current
        self._past: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._previous: np.ndarray | None = None
        self._current: np.ndarray | None = None  # downscaled copy of the frame last fed
        self._factor = 1.0
        self._count = 0
        self._background: np.ndarray | None = None
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
        self.dropped_as_background = 0

    def _estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
        """Homography between two *downscaled* frames, in full pixels (None: not found)."""
        found = _fit_homography(previous, current, self.max_corners, *self._lk)
        return None if found is None else _finish_homography(found, self._factor, current.shape)

    def update(self, frame: np.ndarray, needed: bool = True) -> np.ndarray:
        """Feed the next frame (BGR or gray uint8); returns it as gray.

        With ``sparse``, the camera's motion is estimated only where it is used — at a
        background sample and where ``needed`` (a keyframe whose :meth:`mask` follows) — from the
        last frame it was estimated at, so the other frames cost a conversion only.
        """
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        sample = self._count % self.every == 0
        if self.sparse and not needed and not sample and self._previous is not None:
            self._count += 1
            return gray
        self._factor = 1.0
        small = gray
        if self.motion_width is not None and gray.shape[1] > self.motion_width:
            self._factor = self.motion_width / gray.shape[1]
            small = _downscale(gray, self._factor)
        if self._previous is not None and self._previous.shape == small.shape:
            step = self._estimate(self._previous, small)
            step = np.eye(3) if step is None else step
            self._past = [(g, s, step @ h) for g, s, h in self._past]
        if sample:
            self._past.append((gray, small, np.eye(3)))
            self._past = self._past[-self.samples :]
        self._previous = self._current = small
        self._count += 1
        return gray

    @property
    def ready(self) -> bool:
        """Enough past frames for a median background (3 besides the current one)."""
        return len(self._past) >= 4

    def mask(self, gray: np.ndarray) -> np.ndarray:
        """Foreground of ``gray`` (the frame last fed) against the warped median background."""
        height, width = gray.shape
        stack, valid = [], np.ones((height, width), bool)
        refined = []
        identity = np.eye(3)
        scale = np.diag([self._factor, self._factor, 1.0])
        for past, small, homography in self._past:
            if self.skip_static and np.array_equal(homography, identity):
                # A static camera (every step since was ~identity): nothing to warp or refine.
                refined.append((past, small, homography))
                stack.append(past)
                continue
            warped = None
            # The chain drifts by a little each frame: one direct registration of the warped
            # frame onto the current one removes what it accumulated.
            residual = None
            if self.refine and self.small_refine and self._current is not None:
                reduced = scale @ homography @ np.linalg.inv(scale)
                size = (self._current.shape[1], self._current.shape[0])
                warped_small = cv2.warpPerspective(small, reduced, size, flags=cv2.INTER_LINEAR)
                residual = self._estimate(warped_small, self._current)
            elif self.refine:
                warped = cv2.warpPerspective(
                    past, homography, (width, height), flags=cv2.INTER_LINEAR
                )
                residual = estimate_homography(warped, gray, self.max_corners, self.motion_width)
            if residual is not None and not np.array_equal(residual, identity):
                homography = residual @ homography
                warped = None
            if warped is None:
                warped = cv2.warpPerspective(
                    past, homography, (width, height), flags=cv2.INTER_LINEAR
                )
            refined.append((past, small, homography))
            inside: np.ndarray[Any, Any]
            if self.polygon_valid:
                inside = np.zeros((height, width), np.uint8)
                corners = np.array(
                    [[[0, 0]], [[width - 1, 0]], [[width - 1, height - 1]], [[0, height - 1]]],
                    np.float64,
                )
                quad = cv2.perspectiveTransform(corners, homography)
                cv2.fillConvexPoly(inside, np.round(quad).astype(np.int32), 255)
                inside = cv2.erode(inside, np.ones((3, 3), np.uint8))  # interpolated edge
            else:
                inside = cv2.warpPerspective(
                    np.full_like(past, 255), homography, (width, height), flags=cv2.INTER_NEAREST
                )
            stack.append(warped)
            valid &= inside > 0
        self._past = refined
        background = (
            median_u8(stack)
            if self.fast_median
            else np.median(np.stack(stack), axis=0).astype(np.uint8)
        )
        self._background = background
        diff = cv2.absdiff(gray, background)
        raw = ((diff > self.threshold) & valid).astype(np.uint8) * 255
        opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, self._open)
        return cv2.morphologyEx(opened, cv2.MORPH_CLOSE, self._close, iterations=2)

    def boxes(self, mask: np.ndarray, gray: np.ndarray | None = None) -> torch.Tensor:
        """Proposals of ``mask`` (from :meth:`mask`), minus those that look like the background."""
        boxes = boxes_from_mask(
            mask, self.min_area, self.max_area, self.nms_iou, 4 * self.max_proposals
        )
        if gray is None or self._background is None or len(boxes) == 0:
            return boxes[: self.max_proposals]
        keep = []
        for i, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
            patch, behind = gray[y1:y2, x1:x2], self._background[y1:y2, x1:x2]
            if patch.size < 4 or float(patch.std()) < 1 or float(behind.std()) < 1:
                keep.append(i)
                continue
            score = float(cv2.matchTemplate(patch, behind, cv2.TM_CCOEFF_NORMED)[0, 0])
            if score >= self.background_ncc:
                self.dropped_as_background += 1
            else:
                keep.append(i)
        return boxes[keep][: self.max_proposals]
