"""Mining quality on synthetic video with ground truth, next to chance and same-run baselines.

Generates ``--videos`` synthetic clips (textured background, objects of 4 classes moving with
pose/scale/lighting changes), mines them with ``selfsup mine``'s library, and prints:
  * track IoU with the tracked object (mean over all tracked frames, and the share of tracks with
    IoU > 0.5 at their last frame) vs a *static-box* baseline (the first box held still);
  * the same tracker started on the *true* box (oracle initialisation), which separates tracking
    error from proposal error;
  * intra-edge instance purity, inter-edge and transitive-pair same-class precision vs chance
    (1/C and Σ p_c² of the observed classes) and vs random node pairs drawn in the same run.

    python bench/mine_quality.py [--videos 12] [--frames 80] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from selfsup.config import MineParams
from selfsup.mining import stage
from selfsup.mining.extract import mine_video, node_gap_frames
from selfsup.mining.graph import read_graph
from selfsup.mining.quality import iou
from selfsup.mining.synthetic import read_ground_truth, write_synthetic_set
from selfsup.video.decode import read_frames
from selfsup.video.track import NccTracker, Track


def _track_ious(folder: Path, params: MineParams) -> dict[str, float]:
    tracked, static, last_tracked, last_static = [], [], [], []
    for video in sorted(folder.glob("*.avi")):
        truth = read_ground_truth(video)
        assert truth is not None
        for track in mine_video(video, params).tracks:
            boxes = np.asarray(track.boxes, np.float32)
            target = int(iou(boxes[:1], truth["boxes"][track.frames[0]])[0].argmax())
            gt = np.stack([truth["boxes"][f][target] for f in track.frames])
            t = [float(iou(boxes[i : i + 1], gt[i : i + 1])[0, 0]) for i in range(len(gt))]
            s = [float(iou(boxes[:1], gt[i : i + 1])[0, 0]) for i in range(len(gt))]
            tracked += t
            static += s
            last_tracked.append(t[-1] > 0.5)
            last_static.append(s[-1] > 0.5)
    return {
        "track_iou_mean": float(np.mean(tracked)),
        "static_box_iou_mean": float(np.mean(static)),
        "track_last_iou_above_0_5": float(np.mean(last_tracked)),
        "static_box_last_iou_above_0_5": float(np.mean(last_static)),
        "tracks": float(len(last_tracked)),
    }


def _oracle_tracker_iou(folder: Path, params: MineParams) -> float:
    """Mean IoU of the NCC tracker started on each true box every ``keyframe_every`` frames."""
    values: list[float] = []
    tracker = NccTracker(params.search_margin, params.min_track_score)
    for video in sorted(folder.glob("*.avi")):
        truth = read_ground_truth(video)
        assert truth is not None
        grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for _, f in read_frames(video)]
        length = node_gap_frames(10.0, params.min_track_seconds) + 1  # 10 fps clips: 1st pair
        starts = range(params.warmup_frames, len(grays) - length, params.keyframe_every)
        for start in starts:
            for k in range(len(truth["ids"])):
                track = Track(track_id=0, start=start)
                box = tuple(float(v) for v in truth["boxes"][start][k])
                template = tracker.start(
                    track, grays[start], (box[0], box[1], box[2], box[3]), start
                )
                for f in range(start + 1, start + length):
                    template = tracker.step(track, template, grays[f], f)
                    if track.lost:
                        break
                for b, f in zip(track.boxes, track.frames, strict=True):
                    values.append(float(iou(np.array([b]), truth["boxes"][f][k : k + 1])[0, 0]))
    return float(np.mean(values))


def _random_pairs(graph_dir: Path, seed: int, count: int = 20_000) -> dict[str, float]:
    graph = read_graph(graph_dir)
    known = np.flatnonzero(graph.gt_instance >= 0)
    rng = np.random.default_rng(seed)
    a, b = rng.choice(known, count), rng.choice(known, count)
    keep = a != b
    a, b = a[keep], b[keep]
    return {
        "random_pair_same_class": float((graph.gt_class[a] == graph.gt_class[b]).mean()),
        "random_pair_same_instance": float((graph.gt_instance[a] == graph.gt_instance[b]).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    params = MineParams(source="folder", seed=args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "videos"
        write_synthetic_set(folder, args.videos, args.frames, (160, 224), 3, 4, args.seed)
        metrics = stage.run(folder, params=params, out=Path(scratch) / "mined")
        tracks = _track_ious(folder, params)
        tracks["oracle_init_track_iou_mean"] = _oracle_tracker_iou(folder, params)
        baseline = _random_pairs(Path(scratch) / "mined", args.seed)
    q = metrics["synthetic"]
    report = {
        "videos": args.videos,
        "frames_per_video": args.frames,
        "nodes": metrics["nodes"],
        "edges": metrics["edges"],
        **tracks,
        "track_iou_ratio_vs_static": tracks["track_iou_mean"] / tracks["static_box_iou_mean"],
        "intra_instance_purity": q["intra_instance_purity"],
        "inter_same_class_precision": q["inter_same_class_precision"],
        "transitive_same_class_precision": q["transitive_same_class_precision"],
        "chance_same_class_uniform": q["chance_same_class_uniform"],
        "chance_same_class_observed": q["chance_same_class_observed"],
        "nodes_matched_to_truth": q["nodes_matched"],
        **baseline,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
