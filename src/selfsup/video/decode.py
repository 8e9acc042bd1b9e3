"""Decoding with OpenCV (headless): local avi/mp4 files, a frame stride or a target rate.

OpenCV's FFmpeg backend reads both containers (MJPEG/XVID avi, h264 mp4) from one wheel with no
system libraries. A file that does not open, yields no frame, or ends well before the frame count
in its header is a :class:`VideoError` naming the file, so a caller mining many videos can record
the failure and go on with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from selfsup.errors import DataError

# Header frame counts of some containers are estimates; a shortfall beyond this share is a
# truncated or corrupted file.
_TRUNCATION_TOLERANCE = 0.02
# OpenCV's videoio logs a WARN ("cap.cpp … can't be used to capture by name") for every file its
# FFmpeg backend cannot open; the VideoError below already says so, once, naming the file.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class VideoError(DataError):
    """A video that cannot be decoded (missing, corrupt, truncated)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: native rate, declared frame count, frame size."""

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int


def _open(path: Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise VideoError(f"{path}: cannot be opened as a video (corrupt or unsupported format)")
    info = VideoInfo(
        path=path,
        fps=float(capture.get(cv2.CAP_PROP_FPS)) or 25.0,
        frame_count=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    return capture, info


def probe(path: Path) -> VideoInfo:
    """The container's metadata (raises :class:`VideoError` when it does not open)."""
    capture, info = _open(Path(path))
    capture.release()
    return info


def frame_stride(native_fps: float, target_fps: float | None) -> int:
    """Keep every ``stride``-th frame so the kept rate is ≈ ``target_fps`` (never upsampled)."""
    if target_fps is None or target_fps >= native_fps:
        return 1
    return max(1, round(native_fps / target_fps))


def read_frames(
    path: Path, target_fps: float | None = None, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame index in the file, BGR uint8 [H,W,3])`` for the kept frames.

    Raises :class:`VideoError` when the file does not open, decodes to nothing, or stops more
    than 2 % short of its declared length (truncated) — after yielding what it could decode, so a
    caller must treat a raised error as "this file failed".
    """
    path = Path(path)
    capture, info = _open(path)
    stride = frame_stride(info.fps, target_fps)
    decoded = kept = 0
    try:
        while max_frames is None or kept < max_frames:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            if decoded % stride == 0:
                kept += 1
                yield decoded, frame
            decoded += 1
    finally:
        capture.release()
    if decoded == 0:
        raise VideoError(f"{path}: no frame could be decoded (corrupt file)")
    reached_limit = max_frames is not None and kept >= max_frames
    if not reached_limit and decoded < info.frame_count * (1 - _TRUNCATION_TOLERANCE):
        raise VideoError(
            f"{path}: decoding stopped after {decoded} of the {info.frame_count} frames in its "
            "header — the file is truncated or corrupted from there on"
        )
