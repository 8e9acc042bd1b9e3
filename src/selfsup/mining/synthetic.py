"""Synthetic video with ground truth, for tests and for measuring the miner.

A textured background (smoothed noise plus a tile pattern, so NCC has structure to lock on and the
background model something to learn) and objects of up to four classes — disc, square, triangle,
cross — each with its own colour and stripe texture (carried with the object), moving with
constant velocity (bouncing off the borders) while rotating (pose), changing scale and brightness
(lighting). Per frame the tight box, instance id and class of every object are recorded.

As hard as real video when asked (:class:`Camera`; all off by default, the static-camera clips of
issue 3): the scene is a *world* larger than the frame, seen by a camera that pans (smooth
sinusoids in x and y, ``pan`` × frame size of amplitude) and zooms (scale 1 ± ``zoom``); ``clutter``
static high-contrast textured shapes sit in the world (what background subtraction mistakes for
objects once the camera moves); ``fps`` sets the rate, with motion defined per second (at 10 fps
the per-frame motion of the old clips), so a 25 fps clip moves 2.5× less per frame. The camera is a
similarity (scale + shift, no rotation), so the world's tight box maps exactly to the frame's.
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
_BASE_FPS = 10.0  # the rate the per-frame motion constants below were chosen at


@dataclass(frozen=True)
class Camera:
    """Camera motion and clutter of a synthetic clip (defaults: the static camera of issue 3)."""

    pan: float = 0.0  # pan amplitude, a share of the frame size, per axis
    zoom: float = 0.0  # scale in [1 - zoom, 1 + zoom]
    clutter: int = 0  # static textured distractor shapes in the world
    fps: float = _BASE_FPS


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


def _add_clutter(rng: np.random.Generator, world: np.ndarray, count: int) -> None:
    """Static distractors: rectangles and ellipses with a fine checker texture, drawn in place."""
    height, width = world.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(count):
        w, h = (rng.uniform(0.06, 0.2, 2) * min(height, width)).tolist()
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        mask = np.zeros((height, width), np.uint8)
        if rng.random() < 0.5:
            cv2.rectangle(
                mask,
                (round(cx - w / 2), round(cy - h / 2)),
                (round(cx + w / 2), round(cy + h / 2)),
                1,
                -1,
            )
        else:
            cv2.ellipse(
                mask, (round(cx), round(cy)), (round(w / 2), round(h / 2)), 0, 0, 360, 1, -1
            )
        cell = int(rng.integers(3, 7))
        checker = ((xx // cell + yy // cell) % 2).astype(np.float32)
        colour = rng.uniform(30, 255, 3)
        inside = mask.astype(bool)
        world[inside] = colour[None, :] * (0.55 + 0.45 * checker[inside])[:, None]


def _camera_path(
    rng: np.random.Generator, frames: int, size: tuple[int, int], camera: Camera
) -> np.ndarray:
    """Per frame ``(scale, cx, cy)``: the zoom and the world point at the frame centre."""
    height, width = size
    t = np.arange(frames) / camera.fps  # seconds
    periods = rng.uniform(3.0, 6.0, 3)  # seconds per cycle: x pan, y pan, zoom
    phases = rng.uniform(0, 2 * math.pi, 3)
    wave = np.sin(2 * math.pi * t[:, None] / periods[None, :] + phases[None, :])
    margin_x, margin_y = _margins(size, camera)
    cx = margin_x + width / 2 + camera.pan * width * wave[:, 0]
    cy = margin_y + height / 2 + camera.pan * height * wave[:, 1]
    scale = 1.0 + camera.zoom * wave[:, 2]
    return np.stack([scale, cx, cy], 1)


def _margins(size: tuple[int, int], camera: Camera) -> tuple[int, int]:
    """World border around the nominal view: the pan amplitude plus what zooming out reveals."""
    height, width = size
    grow = 1.0 / (1.0 - camera.zoom) - 1.0 if camera.zoom else 0.0
    return (
        math.ceil(width * (camera.pan + grow / 2)) + 2 if camera.pan or camera.zoom else 0,
        math.ceil(height * (camera.pan + grow / 2)) + 2 if camera.pan or camera.zoom else 0,
    )


def make_video(
    seed: int,
    frames: int,
    size: tuple[int, int],
    objects: int,
    classes: int,
    camera: Camera | None = None,
) -> SyntheticVideo:
    """Render one video; everything is a function of ``seed`` (and ``camera``)."""
    camera = camera or Camera()
    rng = np.random.default_rng(seed)
    height, width = size
    margin_x, margin_y = _margins(size, camera)
    world_h, world_w = height + 2 * margin_y, width + 2 * margin_x
    background = _background(rng, world_h, world_w)
    obj_classes = rng.integers(0, classes, objects)
    colours = rng.uniform(60, 255, (objects, 3))
    radius0 = rng.uniform(0.09, 0.14, objects) * min(height, width)
    pos = np.stack(
        [rng.uniform(0.2, 0.8, objects) * width, rng.uniform(0.2, 0.8, objects) * height], 1
    )
    pos += np.array([margin_x, margin_y], np.float64)
    rate = _BASE_FPS / camera.fps  # per-frame motion constants are per 1/10 s
    speed = rng.uniform(0.8, 2.0, objects) * min(height, width) / 100 * rate
    heading = rng.uniform(0, 2 * math.pi, objects)
    vel = np.stack([np.cos(heading), np.sin(heading)], 1) * speed[:, None]
    spin = rng.uniform(-0.08, 0.08, objects) * rate
    phase = rng.uniform(0, 2 * math.pi, objects)
    if camera.clutter:
        _add_clutter(rng, background, camera.clutter)
    path = _camera_path(rng, frames, size, camera) if camera.pan or camera.zoom else None
    bounds = ((margin_x, margin_x + width), (margin_y, margin_y + height))  # the nominal view
    out = np.zeros((frames, height, width, 3), np.uint8)
    boxes = np.zeros((frames, objects, 4), np.float32)
    for t in range(frames):
        canvas = background.copy()
        world_boxes = np.zeros((objects, 4), np.float64)
        for k in range(objects):
            radius = radius0[k] * (1.0 + 0.25 * math.sin(0.1 * rate * t + phase[k]))  # scale
            light = 0.75 + 0.25 * math.sin(0.07 * rate * t + 2 * phase[k])  # lighting
            for axis, (low, high) in enumerate(bounds):  # bounce inside the nominal view
                if not low + radius <= pos[k, axis] <= high - radius:
                    vel[k, axis] = -vel[k, axis]
                    pos[k, axis] = float(np.clip(pos[k, axis], low + radius, high - radius))
            pts = _shape_points(int(obj_classes[k]), radius, spin[k] * t + phase[k]) + pos[k]
            mask = np.zeros((world_h, world_w), np.uint8)
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
            ys, xs = np.nonzero(mask)
            # Stripes carried with the object (relative to its centre), as a real texture is.
            rel = (xs - pos[k, 0]) + (ys - pos[k, 1])
            stripes = 0.8 + 0.2 * np.sign(np.sin(rel * 0.6 + phase[k]))
            canvas[ys, xs] = (colours[k] * light)[None, :] * stripes[:, None]
            if len(xs):
                world_boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            pos[k] += vel[k]
        if path is None:
            out[t] = np.clip(canvas, 0, 255).astype(np.uint8)
            boxes[t] = world_boxes
            continue
        scale, cx, cy = path[t]
        # frame = scale * (world - centre) + frame centre: a similarity, boxes map exactly.
        affine = np.array(
            [[scale, 0.0, width / 2 - scale * cx], [0.0, scale, height / 2 - scale * cy]]
        )
        warped = cv2.warpAffine(
            canvas,
            affine,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        out[t] = np.clip(warped, 0, 255).astype(np.uint8)
        mapped = world_boxes * scale + np.tile(affine[:, 2], 2)
        mapped[:, 0::2] = mapped[:, 0::2].clip(0, width)
        mapped[:, 1::2] = mapped[:, 1::2].clip(0, height)
        empty = (mapped[:, 2] <= mapped[:, 0]) | (mapped[:, 3] <= mapped[:, 1])
        mapped[empty | ~world_boxes.any(1)] = 0.0
        boxes[t] = mapped
    return SyntheticVideo(
        frames=out, boxes=boxes, ids=np.arange(objects), classes=obj_classes.astype(np.int64)
    )


def write_video(video: SyntheticVideo, path: Path, fps: float = _BASE_FPS) -> None:
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
    camera: Camera | None = None,
) -> list[Path]:
    """``videos`` synthetic clips (``synthetic-000.avi`` …) with ground truth under ``root``."""
    camera = camera or Camera()
    paths = []
    for i in range(videos):
        path = Path(root) / f"synthetic-{i:03d}.avi"
        clip = make_video(seed * 10_000 + i, frames, size, objects, classes, camera)
        write_video(clip, path, camera.fps)
        paths.append(path)
    return paths
