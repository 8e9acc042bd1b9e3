"""Synthetic video with ground truth, for tests and for measuring the miner.

A textured static background (smoothed noise plus a tile pattern, so NCC has structure to lock on
and the background model something to learn) and objects of up to four classes — disc, square,
triangle, cross — each with its own colour and stripe texture, moving with constant velocity
(bouncing off the borders) while rotating (pose), changing scale and brightness (lighting).
Per frame the tight box, instance id and class of every object are recorded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from selfsup.store import atomic_write_json

CLASS_NAMES = ["disc", "square", "triangle", "cross"]


@dataclass(frozen=True)
class SyntheticVideo:
    """Frames BGR uint8 [T,H,W,3]; boxes float [T,K,4] (x1,y1,x2,y2); ids and classes [K]."""

    frames: np.ndarray
    boxes: np.ndarray
    ids: np.ndarray
    classes: np.ndarray


def _shape_points(cls: int, radius: float, angle: float) -> np.ndarray:
    """Outline of class ``cls`` around the origin, rotated by ``angle`` (radians)."""
    if cls == 0:
        t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif cls == 1:
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * 0.8
    elif cls == 2:
        t = np.array([-math.pi / 2, math.pi / 6, 5 * math.pi / 6])
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    else:
        a, b = 1.0, 0.35
        pts = np.array(
            [
                [-b, -a],
                [b, -a],
                [b, -b],
                [a, -b],
                [a, b],
                [b, b],
                [b, a],
                [-b, a],
                [-b, b],
                [-a, b],
                [-a, -b],
                [-b, -b],
            ]
        )
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    out: np.ndarray = np.asarray(pts @ rot.T * radius, np.float64)
    return out


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    noise = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    tiles = ((xx // 16 + yy // 16) % 2).astype(np.float32)[..., None] * 40.0
    out: np.ndarray = np.clip(0.5 * smooth + 60.0 + tiles, 0, 255).astype(np.float32)
    return out


def make_video(
    seed: int,
    frames: int,
    size: tuple[int, int],
    objects: int,
    classes: int,
) -> SyntheticVideo:
    """Render one video; everything is a function of ``seed``."""
    rng = np.random.default_rng(seed)
    height, width = size
    background = _background(rng, height, width)
    obj_classes = rng.integers(0, classes, objects)
    colours = rng.uniform(60, 255, (objects, 3))
    radius0 = rng.uniform(0.09, 0.14, objects) * min(height, width)
    pos = np.stack(
        [rng.uniform(0.2, 0.8, objects) * width, rng.uniform(0.2, 0.8, objects) * height], 1
    )
    speed = rng.uniform(0.8, 2.0, objects) * min(height, width) / 100
    heading = rng.uniform(0, 2 * math.pi, objects)
    vel = np.stack([np.cos(heading), np.sin(heading)], 1) * speed[:, None]
    spin = rng.uniform(-0.08, 0.08, objects)
    phase = rng.uniform(0, 2 * math.pi, objects)
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.zeros((frames, height, width, 3), np.uint8)
    boxes = np.zeros((frames, objects, 4), np.float32)
    for t in range(frames):
        canvas = background.copy()
        for k in range(objects):
            radius = radius0[k] * (1.0 + 0.25 * math.sin(0.1 * t + phase[k]))  # scale
            light = 0.75 + 0.25 * math.sin(0.07 * t + 2 * phase[k])  # lighting
            for axis, limit in ((0, width), (1, height)):  # bounce inside the frame
                if not radius <= pos[k, axis] <= limit - radius:
                    vel[k, axis] = -vel[k, axis]
                    pos[k, axis] = float(np.clip(pos[k, axis], radius, limit - radius))
            pts = _shape_points(int(obj_classes[k]), radius, spin[k] * t + phase[k]) + pos[k]
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
            stripes = 0.8 + 0.2 * np.sign(np.sin((xx + yy) * 0.6 + phase[k]))
            inside = mask.astype(bool)
            canvas[inside] = (colours[k] * light)[None, :] * stripes[inside][:, None]
            ys, xs = np.nonzero(mask)
            if len(xs):
                boxes[t, k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            pos[k] += vel[k]
        out[t] = np.clip(canvas, 0, 255).astype(np.uint8)
    return SyntheticVideo(
        frames=out, boxes=boxes, ids=np.arange(objects), classes=obj_classes.astype(np.int64)
    )


def write_video(video: SyntheticVideo, path: Path, fps: float = 10.0) -> None:
    """Write ``video`` as an MJPG avi and its ground truth as ``<path>.json`` next to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = video.frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    for frame in video.frames:
        writer.write(frame)
    writer.release()
    atomic_write_json(
        ground_truth_path(path),
        {
            "boxes": video.boxes.round(2).tolist(),
            "ids": video.ids.tolist(),
            "classes": video.classes.tolist(),
            "class_names": CLASS_NAMES,
        },
    )


def ground_truth_path(video: Path) -> Path:
    return Path(video).with_suffix(".truth.json")


def read_ground_truth(video: Path) -> dict[str, np.ndarray] | None:
    """Boxes [T,K,4], ids [K], classes [K] of a synthetic video, or None for a real one."""
    path = ground_truth_path(video)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return {
        "boxes": np.asarray(raw["boxes"], np.float32),
        "ids": np.asarray(raw["ids"], np.int64),
        "classes": np.asarray(raw["classes"], np.int64),
    }


def write_synthetic_set(
    root: Path,
    videos: int,
    frames: int,
    size: tuple[int, int],
    objects: int,
    classes: int,
    seed: int,
) -> list[Path]:
    """``videos`` synthetic clips (``synthetic-000.avi`` …) with ground truth under ``root``."""
    paths = []
    for i in range(videos):
        path = Path(root) / f"synthetic-{i:03d}.avi"
        write_video(make_video(seed * 10_000 + i, frames, size, objects, classes), path)
        paths.append(path)
    return paths
