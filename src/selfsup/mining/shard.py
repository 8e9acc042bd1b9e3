"""Scale-out: videos split into independent shards, each mined alone, merged deterministically.

Sorted video names are dealt round-robin (``sorted(paths)[index::num_shards]``), so a shard is a
pure function of the video set; one worker (or one KFP ParallelFor task) mines one shard into a
shard directory. The merge orders videos by name whatever the shard layout, so 1 shard and N
shards give the same graph (tested). Ground truth, when a synthetic video has it, is matched
inside the shard, where the truth file is at hand.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import MineParams
from selfsup.errors import DataError
from selfsup.mining.extract import VideoResult, mine_video
from selfsup.mining.quality import iou, match
from selfsup.mining.synthetic import read_ground_truth
from selfsup.observe.progress import Progress
from selfsup.store import atomic_write_bytes, atomic_write_json, read_manifest, write_manifest
from selfsup.store.tensors import load_tensors
from selfsup.video.decode import VideoError

log = logging.getLogger("selfsup.mine")

SHARD_KIND = "mine-shard"


def shard_videos(paths: list[Path], num_shards: int, index: int) -> list[Path]:
    """The videos of shard ``index`` of ``num_shards`` (round-robin over sorted names)."""
    if not 0 <= index < num_shards:
        raise DataError(f"shard index {index} is outside 0..{num_shards - 1}")
    return sorted(paths, key=lambda p: p.name)[index::num_shards]


@dataclass
class ShardData:
    """Per-video records (JSON-able) and the patches of all their nodes, in record order."""

    records: list[dict[str, Any]] = field(default_factory=list)
    patches: list[np.ndarray] = field(default_factory=list)  # per video, uint8 [n,P,P,3]
    failures: list[dict[str, str]] = field(default_factory=list)


def _record(result: VideoResult, truth: dict[str, np.ndarray] | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "video": result.video,
        "frames": result.frames,
        "seconds": result.seconds,
        "video_seconds": result.video_seconds,
        "fps": result.fps,
        "tracks_started": result.tracks_started,
        "tracks_drifted": result.tracks_drifted,
        "tracks_kept": len(result.tracks),
        "node_frames": result.node_frames,
        "node_boxes": [list(b) for b in result.node_boxes],
        "node_tracks": result.node_tracks,
        "gt_instance": [-1] * len(result.node_frames),
        "gt_class": [-1] * len(result.node_frames),
        "track_ious": [],
        "truth": truth is not None,
    }
    if truth is None:
        return record
    gt_boxes = truth["boxes"]
    for i, (frame, box) in enumerate(zip(result.node_frames, result.node_boxes, strict=True)):
        best, _ = match(np.asarray(box, np.float32), gt_boxes[frame])
        if best >= 0:
            record["gt_instance"][i] = int(truth["ids"][best])
            record["gt_class"][i] = int(truth["classes"][best])
    for track in result.tracks:
        boxes = np.asarray(track.boxes, np.float32)
        target = int(iou(boxes[:1], gt_boxes[track.frames[0]])[0].argmax())
        record["track_ious"].append(
            [
                float(iou(boxes[i : i + 1], gt_boxes[f][target : target + 1])[0, 0])
                for i, f in enumerate(track.frames)
            ]
        )
    return record


def mine_shard(paths: list[Path], params: MineParams) -> ShardData:
    """Mine each video; an undecodable one is recorded in ``failures`` and the rest go on.

    Progress: a bar per video on a terminal, and one log line per video either way.
    """
    shard = ShardData()
    ordered = sorted(paths, key=lambda p: p.name)
    with Progress(len(ordered), "mine") as bar:
        for path in ordered:
            try:
                result = mine_video(path, params)
            except VideoError as exc:
                shard.failures.append({"video": path.name, "error": str(exc)})
                log.warning("skipped %s: %s", path.name, exc)
                bar.step()
                continue
            record = _record(result, read_ground_truth(path))
            shard.records.append(record)
            size = params.patch_size
            shard.patches.append(
                np.stack(result.patches)
                if result.patches
                else np.zeros((0, size, size, 3), np.uint8)
            )
            rate = float(record["frames"]) / max(float(record["seconds"]), 1e-9)
            bar.step(frames_s=rate)
            log.info(
                "mined %s: %d frames, %d tracks kept, %.0f frames/s",
                path.name,
                int(record["frames"]),
                int(record["tracks_kept"]),
                rate,
            )
    return shard


def save_shard(root: Path, shard: ShardData, params: MineParams) -> dict[str, Any]:
    """Write a shard directory (records, failures, patches, manifest last)."""
    root = Path(root)
    atomic_write_json(root / "records.json", {"records": shard.records, "failures": shard.failures})
    buffer = io.BytesIO()
    torch.save({f"{i:05d}": torch.from_numpy(p) for i, p in enumerate(shard.patches)}, buffer)
    atomic_write_bytes(root / "patches.pt", buffer.getvalue())
    return write_manifest(
        root,
        SHARD_KIND,
        params.model_dump(),
        videos=len(shard.records),
        failures=len(shard.failures),
    )


def load_shard(root: Path) -> ShardData:
    """Read a shard directory written by :func:`save_shard` (checksums verified)."""
    root = Path(root)
    read_manifest(root, kind=SHARD_KIND)
    raw = json.loads((root / "records.json").read_text())
    tensors = load_tensors(root / "patches.pt")
    patches = [tensors[key].numpy() for key in sorted(tensors)]
    return ShardData(records=raw["records"], patches=patches, failures=raw["failures"])


def combine(shards: list[ShardData]) -> ShardData:
    """One shard holding all videos of ``shards``, ordered by video name (deterministic)."""
    pairs = [(r, p) for s in shards for r, p in zip(s.records, s.patches, strict=True)]
    pairs.sort(key=lambda rp: str(rp[0]["video"]))
    names = [str(r["video"]) for r, _ in pairs]
    if len(set(names)) != len(names):
        raise DataError("the same video appears in more than one shard")
    failures = sorted((f for s in shards for f in s.failures), key=lambda f: f["video"])
    return ShardData(
        records=[r for r, _ in pairs], patches=[p for _, p in pairs], failures=failures
    )
