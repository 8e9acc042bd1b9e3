"""Tracking by normalised cross-correlation (NCC) in a search window.

The headless OpenCV wheel ships only slow learning trackers (MIL, ...); for a window of a dozen
frames, matching the previous frame's patch by ``cv2.matchTemplate(TM_CCOEFF_NORMED)`` inside a
box enlarged by a margin is fast and good enough, and its peak score is a direct drift signal:
a track whose best match falls below ``min_score`` has lost its object and is dropped.
The box keeps its size (NCC does not estimate scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Track:
    """One object followed over consecutive processed frames; boxes in tracking pixels."""

    track_id: int
    start: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    lost: bool = False

    @property
    def length(self) -> int:
        return len(self.boxes)


class NccTracker:
    """Follows one box from frame to frame; call :meth:`step` with each next gray frame."""

    def __init__(self, margin: float, min_score: float) -> None:
        self.margin = margin
        self.min_score = min_score

    def start(
        self, track: Track, gray: np.ndarray, box: tuple[float, float, float, float], frame: int
    ) -> np.ndarray:
        """Record ``box`` as the track's first box; return the template for the next step."""
        x1, y1, x2, y2 = _clip(box, gray.shape)
        track.boxes.append((x1, y1, x2, y2))
        track.frames.append(frame)
        track.scores.append(1.0)
        return gray[int(y1) : int(y2), int(x1) : int(x2)].copy()

    def reanchor(
        self, track: Track, gray: np.ndarray, box: tuple[float, float, float, float], weight: float
    ) -> np.ndarray:
        """Pull the current box toward ``box`` (a proposal of the same object) by ``weight``.

        ``weight`` 1 snaps to it, 0 keeps the tracked box; the template is re-cut from ``gray``
        at the new box, so the track follows the object's size as well as its position.
        """
        current = np.asarray(track.boxes[-1], np.float64)
        mixed = (1.0 - weight) * current + weight * np.asarray(box, np.float64)
        x1, y1, x2, y2 = _clip((mixed[0], mixed[1], mixed[2], mixed[3]), gray.shape)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return gray[int(current[1]) : int(current[3]), int(current[0]) : int(current[2])].copy()
        track.boxes[-1] = (x1, y1, x2, y2)
        return gray[int(y1) : int(y2), int(x1) : int(x2)].copy()

    def step(self, track: Track, template: np.ndarray, gray: np.ndarray, frame: int) -> np.ndarray:
        """Find ``template`` near the last box in ``gray``; append the box or mark ``lost``."""
        x1, y1, _x2, _y2 = track.boxes[-1]
        h, w = template.shape[:2]
        mx, my = round(self.margin * w), round(self.margin * h)
        sx1, sy1 = max(0, int(x1) - mx), max(0, int(y1) - my)
        sx2, sy2 = min(gray.shape[1], int(x1) + w + mx), min(gray.shape[0], int(y1) + h + my)
        window = gray[sy1:sy2, sx1:sx2]
        if window.shape[0] < h or window.shape[1] < w or h < 2 or w < 2:
            track.lost = True  # the object left the frame
            return template
        scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (dx, dy) = cv2.minMaxLoc(scores)
        if not np.isfinite(best) or best < self.min_score:
            track.lost = True
            return template
        nx1, ny1 = float(sx1 + dx), float(sy1 + dy)
        track.boxes.append((nx1, ny1, nx1 + w, ny1 + h))
        track.frames.append(frame)
        track.scores.append(float(best))
        return gray[int(ny1) : int(ny1) + h, int(nx1) : int(nx1) + w].copy()


def _clip(
    box: tuple[float, float, float, float], shape: tuple[int, ...]
) -> tuple[float, float, float, float]:
    height, width = shape[:2]
    x1, y1, x2, y2 = box
    return (
        float(max(0, int(x1))),
        float(max(0, int(y1))),
        float(min(width, int(x2))),
        float(min(height, int(y2))),
    )
