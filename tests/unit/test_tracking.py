"""NCC tracker on a moving textured square (IoU with the truth), proposals from a hand mask."""

from __future__ import annotations

import numpy as np

from selfsup.mining.quality import iou
from selfsup.video.proposals import MotionProposer, boxes_from_mask
from selfsup.video.track import NccTracker, Track


def _square_video(frames: int = 30) -> tuple[list[np.ndarray], list[tuple[float, ...]]]:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    texture = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    images, boxes = [], []
    for t in range(frames):
        x, y = 10 + 3 * t, 20 + round(1.5 * t)
        frame = background.copy()
        frame[y : y + 24, x : x + 24] = texture
        images.append(frame)
        boxes.append((float(x), float(y), float(x + 24), float(y + 24)))
    return images, boxes


def test_tracker_follows_textured_square() -> None:
    frames, truth = _square_video()
    tracker = NccTracker(margin=0.5, min_score=0.6)
    track = Track(track_id=0, start=0)
    template = tracker.start(track, frames[0], truth[0], 0)
    for t in range(1, len(frames)):
        template = tracker.step(track, template, frames[t], t)
    assert not track.lost and track.length == len(frames)
    ious = [
        iou(np.array([b]), np.array([g]))[0, 0] for b, g in zip(track.boxes, truth, strict=True)
    ]
    assert float(np.mean(ious)) >= 0.7


def test_tracker_drops_a_track_whose_object_vanishes() -> None:
    frames, truth = _square_video(5)
    tracker = NccTracker(margin=0.5, min_score=0.6)
    track = Track(track_id=0, start=0)
    template = tracker.start(track, frames[0], truth[0], 0)
    noise = np.random.default_rng(9).integers(0, 256, frames[0].shape, dtype=np.uint8)
    tracker.step(track, template, noise, 1)
    assert track.lost and track.length == 1


def test_boxes_from_mask_area_bounds_and_nms() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[10:30, 10:30] = 255  # area 0.04: kept
    mask[50:52, 50:52] = 255  # area 0.0004: too small
    mask[60:95, 5:95] = 255  # area 0.315: too large
    boxes = boxes_from_mask(mask, 0.01, 0.3, 0.5, 8)
    assert boxes.tolist() == [[10.0, 10.0, 30.0, 30.0]]
    # Two overlapping components cannot exist (they would be one), so NMS is checked on the
    # limit: max_proposals keeps the largest first.
    mask2 = np.zeros((100, 100), np.uint8)
    mask2[0:10, 0:10] = mask2[50:70, 50:70] = 255
    assert boxes_from_mask(mask2, 0.001, 0.5, 0.5, 1).tolist() == [[50.0, 50.0, 70.0, 70.0]]


def test_motion_proposer_finds_the_moving_square() -> None:
    frames, truth = _square_video()
    proposer = MotionProposer(0.01, 0.3, 0.3, 4)
    for frame in frames[:-1]:
        proposer.update(frame)
    boxes = proposer.boxes(proposer.update(frames[-1])).numpy()
    assert len(boxes) >= 1
    assert iou(boxes, np.array([truth[-1]])).max() >= 0.5
