"""One video → tracked patches and intra-instance edges (the per-video, shardable half of mining).

Frames are downscaled to ``max_side`` for detection and tracking (cost ∝ pixels); boxes are mapped
back to the original resolution and patches are cropped there. After ``warmup_frames`` of
background learning, every ``keyframe_every`` frames the motion proposals are matched to the live
tracks: **one live track per object** — a proposal that overlaps a live track (intersection over
the smaller box ≥ ``extend_overlap``: a partial proposal inside a whole one counts) extends it: its
box is pulled toward the proposal by ``track_reanchor``, which also corrects NCC's fixed box size.
Only a textured proposal that overlaps no live track starts one (a flat patch gives NCC nothing to
lock on). Of two live tracks that converge on one object (the same overlap), the younger ends.

A track lives until it drifts (NCC below ``min_track_score``), leaves the frame, goes
``confirm_seconds`` without an overlapping proposal (the object stopped, or NCC slid onto the
background: its nodes since the last proposal are dropped), or the clip ends;
every ``min_track_seconds`` of *native* time it drops a node (its patch then), so each intra
edge — consecutive nodes of one track — spans at least that much real time, whatever the frame
rate. A track that never spans ``min_track_seconds`` yields nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from selfsup.config import MineParams
from selfsup.video.decode import frame_stride, probe, read_frames
from selfsup.video.proposals import CompensatedProposer, MotionProposer
from selfsup.video.track import NccTracker, Track

Box = tuple[float, float, float, float]


@dataclass
class VideoResult:
    """Nodes (a chain per kept track, in track order), their patches, the kept tracks' boxes."""

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
    fps: float = 0.0


@dataclass
class _Live:
    """A live track, its NCC template, and the nodes it has dropped (frame, box, patch)."""

    track: Track
    template: np.ndarray
    nodes: list[tuple[int, Box, np.ndarray]] = field(default_factory=list)
    confirmed: int = 0  # last file frame a proposal overlapped it


def _crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    x1, y1, x2, y2 = (round(v) for v in box)
    patch = frame[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)


def _scaled(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box, ``[N,M]``, of boxes ``[N,4]`` × ``[M,4]``."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    out: np.ndarray = inter / np.maximum(smaller, 1e-9)
    return out


def node_gap_frames(native_fps: float, min_track_seconds: float) -> int:
    """File frames between a track's nodes: at least ``min_track_seconds`` at the native rate."""
    return max(1, math.ceil(min_track_seconds * native_fps - 1e-9))


def mine_video(
    path: Path, params: MineParams, proposer_options: dict[str, Any] | None = None
) -> VideoResult:
    """Track moving objects through ``path``; raises VideoError for an undecodable file.

    ``proposer_options`` override :class:`CompensatedProposer`'s keyword defaults (benchmarks).
    """
    started = time.perf_counter()
    info = probe(path)
    scale = min(1.0, params.max_side / max(info.width, info.height))
    stride = frame_stride(info.fps, params.target_fps)
    compensated = (
        CompensatedProposer(
            params.min_area,
            params.max_area,
            params.nms_iou,
            params.max_proposals,
            every=max(1, round(0.16 * info.fps / stride)),  # a background sample every 0.16 s
            background_ncc=params.background_ncc,
            **(proposer_options or {}),
        )
        if params.motion_compensation
        else None
    )
    proposer = MotionProposer(
        params.min_area, params.max_area, params.nms_iou, params.max_proposals
    )
    tracker = NccTracker(params.search_margin, params.min_track_score)
    gap = node_gap_frames(info.fps, params.min_track_seconds)
    confirm_gap = params.confirm_seconds * info.fps
    result = VideoResult(video=Path(path).name, fps=info.fps)
    active: list[_Live] = []
    index = 0
    for file_frame, frame in read_frames(path, params.target_fps, params.max_frames):
        small = (
            frame
            if scale == 1.0
            else cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        keyframe = (
            index >= params.warmup_frames
            and (index - params.warmup_frames) % params.keyframe_every == 0
        )
        if compensated is not None:
            compensated.update(gray, needed=keyframe)
            keyframe = keyframe and compensated.ready
        else:
            mask = proposer.update(small)
        still: list[_Live] = []
        for live in active:
            live.template = tracker.step(live.track, live.template, gray, file_frame)
            if live.track.lost:
                result.tracks_drifted += 1
                _finish(result, live, scale)
            else:
                still.append(live)
        active = _one_per_object(still, params.extend_overlap, result, scale)
        if keyframe:
            found = (
                compensated.boxes(compensated.mask(gray), gray)
                if compensated is not None
                else proposer.boxes(mask)
            )
            for box in found.tolist():
                proposal: Box = (box[0], box[1], box[2], box[3])
                live_match = _overlapping(active, proposal, params.extend_overlap)
                if live_match is not None:
                    live_match.template = tracker.reanchor(
                        live_match.track, gray, proposal, params.track_reanchor
                    )
                    live_match.confirmed = file_frame
                    continue
                x1, y1, x2, y2 = (int(v) for v in box)
                if float(gray[y1:y2, x1:x2].std()) < params.min_texture:
                    continue  # a flat patch (wall, sky): NCC cannot track it, nothing to learn
                track = Track(track_id=result.tracks_started, start=file_frame)
                result.tracks_started += 1
                template = tracker.start(track, gray, proposal, file_frame)
                active.append(_Live(track, template, confirmed=file_frame))
            # Motion no longer supports it: stopped, or NCC slid onto the background. Nodes
            # after the last support are not trusted.
            stale = [a for a in active if file_frame - a.confirmed > confirm_gap]
            for live in stale:
                live.nodes = [n for n in live.nodes if n[0] <= live.confirmed]
                _finish(result, live, scale)
            active = [a for a in active if file_frame - a.confirmed <= confirm_gap]
        for live in active:  # a node every `gap` native frames along each track
            last = live.nodes[-1][0] if live.nodes else None
            if last is None or live.track.frames[-1] - last >= gap:
                box = _scaled(live.track.boxes[-1], 1 / scale)
                patch = _crop(frame, box, params.patch_size)
                live.nodes.append((live.track.frames[-1], box, patch))
        index += 1
    for live in active:
        _finish(result, live, scale)
    result.frames = index
    result.video_seconds = index * stride / info.fps
    result.seconds = time.perf_counter() - started
    return result


def _overlapping(active: list[_Live], box: Box, threshold: float) -> _Live | None:
    """The live track overlapping ``box`` most (:func:`overlap` ≥ ``threshold``), or None."""
    if not active:
        return None
    boxes = np.array([live.track.boxes[-1] for live in active], np.float64)
    overlaps = overlap(np.array([box], np.float64), boxes)[0]
    best = int(overlaps.argmax())
    return active[best] if overlaps[best] >= threshold else None


def _one_per_object(
    active: list[_Live], threshold: float, result: VideoResult, scale: float
) -> list[_Live]:
    """Of live tracks overlapping at ≥ ``threshold`` keep the oldest; the others end."""
    if len(active) < 2:
        return active
    boxes = np.array([live.track.boxes[-1] for live in active], np.float64)
    overlaps = overlap(boxes, boxes)
    keep: list[_Live] = []
    ended = np.zeros(len(active), bool)
    for i, live in enumerate(active):  # oldest first: tracks are appended as they start
        if ended[i]:
            continue
        keep.append(live)
        later = np.arange(len(active)) > i
        duplicate = later & (overlaps[i] >= threshold) & ~ended
        for j in np.flatnonzero(duplicate).tolist():
            ended[j] = True
            _finish(result, active[j], scale)
    return keep


def _finish(result: VideoResult, live: _Live, scale: float) -> None:
    """Record a track that ended: kept when it dropped ≥ 2 nodes (a span ≥ min_track_seconds)."""
    if len(live.nodes) < 2:
        return
    track = live.track
    track.boxes = [_scaled(b, 1 / scale) for b in track.boxes]
    result.tracks.append(track)
    for frame, box, patch in live.nodes:
        result.node_frames.append(frame)
        result.node_boxes.append(box)
        result.node_tracks.append(track.track_id)
        result.patches.append(patch)
