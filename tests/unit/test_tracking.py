"""NCC tracker on a moving textured square (IoU with the truth), proposals from a hand mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from selfsup.config import MineParams
from selfsup.mining.extract import mine_video, node_gap_frames
from selfsup.mining.quality import iou
from selfsup.mining.synthetic import Camera, make_video, write_video
from selfsup.video.proposals import (
    CompensatedProposer,
    MotionProposer,
    boxes_from_mask,
    estimate_homography,
    median_u8,
)
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


def _one_object_clip(path: Path, fps: float) -> None:
    video = make_video(3, round(6 * fps), (120, 160), 1, 4, Camera(fps=fps))
    write_video(video, path, fps)


@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_a_single_moving_object_gives_exactly_one_track(tmp_path: Path, fps: float) -> None:
    clip = tmp_path / "one.avi"
    _one_object_clip(clip, fps)
    params = MineParams(source="folder", min_texture=0.0)
    result = mine_video(clip, params)
    assert len(result.tracks) == 1 and {*result.node_tracks} == {result.tracks[0].track_id}
    # Intra pairs (consecutive nodes of the track) span ≥ min_track_seconds of native time.
    track = np.asarray(result.node_tracks)
    gaps = np.diff(result.node_frames)[track[1:] == track[:-1]] / fps
    assert len(gaps) >= 3 and np.all(gaps >= params.min_track_seconds - 1e-9)
    assert node_gap_frames(fps, 1.0) == round(fps)


def test_a_proposal_overlapping_a_live_track_extends_it() -> None:
    frames, truth = _square_video()
    tracker = NccTracker(margin=0.5, min_score=0.6)
    track = Track(track_id=0, start=0)
    tracker.start(track, frames[0], truth[0], 0)
    # Snapping (weight 1) to a proposal resizes the box; weight 0.5 goes half way.
    tracker.reanchor(track, frames[0], (10.0, 20.0, 40.0, 50.0), 1.0)
    assert track.boxes[-1] == (10.0, 20.0, 40.0, 50.0) and track.length == 1
    tracker.reanchor(track, frames[0], (10.0, 20.0, 30.0, 40.0), 0.5)
    assert track.boxes[-1] == (10.0, 20.0, 35.0, 45.0)


def test_homography_is_recovered_from_a_synthetic_warp() -> None:
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 256, (61, 81), dtype=np.uint8)
    image = cv2.resize(noise, (320, 240), interpolation=cv2.INTER_CUBIC)
    truth = np.array([[1.02, 0.01, 3.5], [-0.012, 0.99, -2.0], [2e-5, -1e-5, 1.0]])
    warped = cv2.warpPerspective(image, truth, (320, 240), flags=cv2.INTER_LINEAR)
    found = estimate_homography(image, warped)
    assert found is not None
    # Reference: the known warp, compared where it matters — points spread over the frame.
    grid = np.array([[[x, y]] for x in (40, 160, 280) for y in (30, 120, 210)], np.float64)
    error = cv2.perspectiveTransform(grid, found) - cv2.perspectiveTransform(grid, truth)
    assert np.abs(error).max() < 0.5
    assert np.array_equal(estimate_homography(image, image), np.eye(3))  # static: identity


def test_compensated_proposer_finds_the_object_and_not_the_panned_background() -> None:
    rng = np.random.default_rng(5)
    world = cv2.resize(
        rng.integers(0, 256, (80, 100), dtype=np.uint8), (400, 320), interpolation=cv2.INTER_CUBIC
    )
    texture = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    proposer = CompensatedProposer(0.005, 0.3, 0.3, 4)
    moving = MotionProposer(0.005, 0.3, 0.3, 4)
    for t in range(30):
        cx, cy = 60 + 2 * t, 50 + t  # the camera pans 2 px right, 1 px down per frame
        scene = world.copy()
        ox, oy = 150 + 3 * t, 150 - 2 * t  # the object moves in the world
        scene[oy : oy + 24, ox : ox + 24] = texture
        frame = np.ascontiguousarray(scene[cy : cy + 160, cx : cx + 200])
        proposer.update(frame)
        static_mask = moving.update(frame)
    boxes = proposer.boxes(proposer.mask(frame), frame).numpy()
    truth = np.array([[ox - cx, oy - cy, ox - cx + 24, oy - cy + 24]], np.float32)
    assert len(boxes) >= 1 and iou(boxes[:1], truth)[0, 0] >= 0.5
    # Without compensation the whole panned background moves: MOG2 proposes no such box.
    plain = moving.boxes(static_mask).numpy()
    assert len(plain) == 0 or iou(plain, truth).max() < 0.5


def test_homography_at_reduced_scale_matches_the_full_scale_one() -> None:
    rng = np.random.default_rng(6)
    image = cv2.resize(
        rng.integers(0, 256, (72, 96), dtype=np.uint8), (384, 288), interpolation=cv2.INTER_CUBIC
    )
    truth = np.array([[1.01, 0.008, 4.0], [-0.006, 0.995, -3.0], [1e-5, -1e-5, 1.0]])
    warped = cv2.warpPerspective(image, truth, (384, 288), flags=cv2.INTER_LINEAR)
    full = estimate_homography(image, warped)
    small = estimate_homography(image, warped, width=160)
    assert full is not None and small is not None
    grid = np.array([[[x, y]] for x in (40, 190, 340) for y in (30, 140, 250)], np.float64)
    found = cv2.perspectiveTransform(grid, small)
    assert np.abs(found - cv2.perspectiveTransform(grid, full)).max() < 1.0
    assert np.abs(found - cv2.perspectiveTransform(grid, truth)).max() < 1.0
    assert np.array_equal(estimate_homography(image, image, width=160), np.eye(3))


def test_fast_median_equals_numpy_median() -> None:
    rng = np.random.default_rng(7)
    for n in (4, 5, 6):
        frames = [rng.integers(0, 256, (30, 40), dtype=np.uint8) for _ in range(n)]
        expected = np.median(np.stack(frames), axis=0).astype(np.uint8)
        assert np.array_equal(median_u8(frames), expected)
