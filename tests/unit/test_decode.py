"""Decoding: frame stride from a target rate, every kept frame, clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from selfsup.video.decode import VideoError, frame_stride, probe, read_frames


def _write(path: Path, frames: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    for t in range(frames):
        writer.write(np.full((48, 64, 3), 4 * t, np.uint8))
    writer.release()
    return path


def test_frame_stride() -> None:
    assert frame_stride(30.0, None) == 1
    assert frame_stride(30.0, 10.0) == 3
    assert frame_stride(10.0, 25.0) == 1  # never upsampled
    assert frame_stride(29.97, 5.0) == 6


def test_reads_every_frame_or_every_stride(tmp_path: Path) -> None:
    video = _write(tmp_path / "v.avi", 20)
    assert probe(video).frame_count == 20
    assert [i for i, _ in read_frames(video)] == list(range(20))
    assert [i for i, _ in read_frames(video, target_fps=5.0)] == list(range(0, 20, 2))
    frames = list(read_frames(video, max_frames=3))
    assert len(frames) == 3 and frames[0][1].shape == (48, 64, 3)


def test_corrupt_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match=r"junk\.mp4"):
        list(read_frames(junk))
    with pytest.raises(VideoError, match="no such video"):
        list(read_frames(tmp_path / "missing.avi"))


def test_truncated_file_is_an_error(tmp_path: Path) -> None:
    video = _write(tmp_path / "v.avi", 40)
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])  # header still says 40 frames
    with pytest.raises(VideoError, match=r"cut\.avi"):
        list(read_frames(cut))


def test_a_file_zeroed_in_the_middle_is_called_corrupted_without_opencv_noise(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    video = _write(tmp_path / "v.avi", 40)
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle : middle + len(data) // 4] = bytes(len(data) // 4)  # zeroed, length unchanged
    zeroed = tmp_path / "zeroed.avi"
    zeroed.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="truncated or corrupted"):
        list(read_frames(zeroed))
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError):
        list(read_frames(junk))
    assert "cap.cpp" not in capfd.readouterr().err
