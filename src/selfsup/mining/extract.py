"""One video → tracked patches and intra-instance edges (the per-video, shardable half of mining).

Frames are downscaled to ``max_side`` for detection and tracking (cost ∝ pixels); boxes are mapped
back to the original resolution and patches are cropped there. After ``warmup_frames`` of
background learning, every ``keyframe_every`` frames the motion proposals (textured ones: a flat
patch gives NCC nothing to lock on) start new tracks; each is followed for ``track_length``
frames. A track that drifts (NCC below ``min_track_score``) or leaves the frame is dropped; a
completed one yields two nodes — its first and last patch, far apart in time — joined by an
intra-instance edge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from selfsup.config import MineParams
from selfsup.video.decode import frame_stride, probe, read_frames
from selfsup.video.proposals import MotionProposer
from selfsup.video.track import NccTracker, Track

Box = tuple[float, float, float, float]


@dataclass
class VideoResult:
    """Nodes (two per kept track), their patches, and the per-frame boxes of every kept track."""

    video: str
    node_frames: list[int] = field(default_factory=list)
    node_boxes: list[Box] = field(default_factory=list)
    node_tracks: list[int] = field(default_factory=list)
    patches: list[np.ndarray] = field(default_factory=list)  # RGB uint8 [P,P,3]
    tracks: list[Track] = field(default_factory=list)  # kept tracks, boxes in original pixels
    tracks_started: int = 0
    tracks_drifted: int = 0
    frames: int = 0
    seconds: float = 0.0
    video_seconds: float = 0.0


def _crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    x1, y1, x2, y2 = (round(v) for v in box)
    patch = frame[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)


def _scaled(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


def mine_video(path: Path, params: MineParams) -> VideoResult:
    """Track moving objects through ``path``; raises VideoError for an undecodable file."""
    started = time.perf_counter()
    info = probe(path)
    scale = min(1.0, params.max_side / max(info.width, info.height))
    proposer = MotionProposer(
        params.min_area, params.max_area, params.nms_iou, params.max_proposals
    )
    tracker = NccTracker(params.search_margin, params.min_track_score)
    result = VideoResult(video=Path(path).name)
    active: list[tuple[Track, np.ndarray, np.ndarray]] = []  # track, template, first patch
    index = 0
    for file_frame, frame in read_frames(path, params.target_fps, params.max_frames):
        small = (
            frame
            if scale == 1.0
            else cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        mask = proposer.update(small)
        still: list[tuple[Track, np.ndarray, np.ndarray]] = []
        for track, template, first in active:
            template = tracker.step(track, template, gray, file_frame)
            if track.lost:
                result.tracks_drifted += 1
            elif track.length >= params.track_length:
                _finish(result, track, first, frame, scale, params.patch_size)
            else:
                still.append((track, template, first))
        active = still
        if (
            index >= params.warmup_frames
            and (index - params.warmup_frames) % (params.keyframe_every) == 0
        ):
            for box in proposer.boxes(mask).tolist():
                x1, y1, x2, y2 = (int(v) for v in box)
                if float(gray[y1:y2, x1:x2].std()) < params.min_texture:
                    continue  # a flat patch (wall, sky): NCC cannot track it, nothing to learn
                track = Track(track_id=result.tracks_started, start=file_frame)
                result.tracks_started += 1
                template = tracker.start(track, gray, (box[0], box[1], box[2], box[3]), file_frame)
                first = _crop(frame, _scaled(track.boxes[0], 1 / scale), params.patch_size)
                active.append((track, template, first))
        index += 1
    result.frames = index
    result.video_seconds = index * frame_stride(info.fps, params.target_fps) / info.fps
    result.seconds = time.perf_counter() - started
    return result


def _finish(
    result: VideoResult,
    track: Track,
    first: np.ndarray,
    frame: np.ndarray,
    scale: float,
    patch_size: int,
) -> None:
    """Record a completed track: original-pixel boxes, and its first and last patch as nodes."""
    track.boxes = [_scaled(b, 1 / scale) for b in track.boxes]
    result.tracks.append(track)
    last = _crop(frame, track.boxes[-1], patch_size)
    for position, patch in ((0, first), (-1, last)):
        result.node_frames.append(track.frames[position])
        result.node_boxes.append(track.boxes[position])
        result.node_tracks.append(track.track_id)
        result.patches.append(patch)
