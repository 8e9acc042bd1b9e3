"""Mining quality and speed, today's code next to the new, in one run (issue 17).

Generates ``--videos`` synthetic clips *with camera motion* (pan, zoom, clutter, 25 fps: the
default ``mine.synthetic_*`` params, see ``mining/synthetic.py``) and mines them with each arm, each
in its own process:

  * ``today``: the mining code of a checkout given by ``--baseline-src`` (its ``src`` folder, e.g.
    a ``git worktree`` of the commit before issue 17), default params;
  * ``new``: this checkout, default params (HOG features);
  * ``new-cross-video``: this checkout, ``mine.inter_cross_video_only: true``;
  * ``new-encoder``: this checkout clustering on the features of an encoder trained (triplet, on
    the ``new`` arm's mined pairs: the ``mine → pretrain → mine`` loop) in the same run.

Every arm's graph is scored by the same function (``mining.quality.across_instances``): the share
of inter edges joining one instance (counted apart, never correct), inter same-class precision
among different instances, transitive-pair precision (same class, other instance, over all matched
pairs), and each arm's own mean track IoU. Then ``--real`` (a folder of real clips) is mined by
``today`` and ``new`` at the clips' native rate: wall time and × real time per clip.

    python bench/mine_compare.py --baseline-src /tmp/base/src --real DIR [--videos 12]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.config import MineParams
from selfsup.mining.graph import read_graph
from selfsup.mining.quality import across_instances, iou
from selfsup.mining.stage import synthetic_camera
from selfsup.mining.synthetic import write_synthetic_set
from selfsup.video.decode import probe

_SELFSUP = str(Path(sys.executable).parent / "selfsup")  # the venv's console script
_ARM = """
import json, sys, time
from pathlib import Path
import selfsup
from selfsup.config import MineParams
from selfsup.mining import stage
videos, out, overrides, encoder, report, proposer = sys.argv[1:7]
if json.loads(proposer):  # CompensatedProposer options (bench/mine_speed.py's levers)
    import functools
    from selfsup.mining import extract
    extract.CompensatedProposer = functools.partial(
        extract.CompensatedProposer, **json.loads(proposer)
    )
params = MineParams(source="folder", **json.loads(overrides))
began = time.perf_counter()
metrics = stage.run(Path(videos), Path(encoder) if encoder else None, params=params, out=Path(out))
metrics["wall_seconds"] = time.perf_counter() - began
metrics["code"] = selfsup.__file__
Path(report).write_text(json.dumps(metrics))
"""


def _mine(
    src: Path,
    videos: Path,
    out: Path,
    overrides: dict[str, Any],
    encoder: str,
    proposer: dict[str, Any] | None = None,
) -> Any:
    env = {**os.environ, "PYTHONPATH": str(src)}
    report = out.with_suffix(".json")
    cmd = [sys.executable, "-c", _ARM, str(videos), str(out), json.dumps(overrides), encoder]
    cmd += [str(report), json.dumps(proposer or {})]
    subprocess.run(cmd, env=env, check=True)
    metrics = json.loads(report.read_text())
    assert str(metrics["code"]).startswith(str(src)), metrics["code"]  # the arm's own code ran
    return metrics


def _intra_motion(graph_dir: Path, fps: dict[str, float]) -> dict[str, float]:
    """Median span (s) of intra pairs and the share whose box moved < 0.1 of its width."""
    graph = read_graph(graph_dir)
    intra = graph.edges_of("intra")
    if len(intra) == 0:
        return {"intra_span_seconds_median": 0.0, "intra_moved_below_0_1_width": 0.0}
    a, b = intra[:, 0], intra[:, 1]
    rate = np.array([fps[graph.videos[i]] for i in a])
    span = np.abs(graph.frames[b] - graph.frames[a]) / rate
    ca = (graph.boxes[a, :2] + graph.boxes[a, 2:]) / 2
    cb = (graph.boxes[b, :2] + graph.boxes[b, 2:]) / 2
    width = np.maximum(graph.boxes[a, 2] - graph.boxes[a, 0], 1.0)
    moved = np.linalg.norm(cb - ca, axis=1) / width
    return {
        "intra_span_seconds_median": float(np.median(span)),
        "intra_moved_below_0_1_width": float((moved < 0.1).mean()),
    }


def _same_object_heuristic(graph_dir: Path) -> float:
    """Share of inter edges in one video ≤ 12 frames apart with box IoU > 0.3 (issue 17's test)."""
    graph = read_graph(graph_dir)
    inter = graph.edges_of("inter")
    if len(inter) == 0:
        return 0.0
    hits = 0
    for a, b in inter.tolist():
        near = graph.videos[a] == graph.videos[b] and abs(graph.frames[a] - graph.frames[b]) <= 12
        hits += bool(near and iou(graph.boxes[a : a + 1], graph.boxes[b : b + 1])[0, 0] > 0.3)
    return hits / len(inter)


def _synthetic_report(out: Path, metrics: dict[str, Any], fps: float) -> dict[str, Any]:
    graph = read_graph(out)
    inter = across_instances(graph.edges_of("inter"), graph.gt_instance, graph.gt_class)
    trans = across_instances(graph.edges_of("transitive"), graph.gt_instance, graph.gt_class)
    rates = dict.fromkeys(graph.videos, fps)
    return {
        "nodes": metrics["nodes"],
        "edges": metrics["edges"],
        "nodes_matched_to_truth": float((graph.gt_instance >= 0).mean()),
        "inter_same_instance_share": inter["same_instance"],
        "inter_same_class_precision_among_different": inter["precision_among_different"],
        "inter_matched": inter["matched"],
        "transitive_precision": trans["precision"],
        "transitive_precision_among_different": trans["precision_among_different"],
        "transitive_same_instance_share": trans["same_instance"],
        "transitive_matched": trans["matched"],
        "track_iou_mean": metrics["synthetic"]["track_iou_mean"],
        "tracks_kept": metrics["tracks_kept"],
        **_intra_motion(out, rates),
        "wall_seconds": metrics["wall_seconds"],
    }


def _real_report(out: Path, metrics: dict[str, Any], real: Path) -> dict[str, Any]:
    per_video: dict[str, Any] = {}
    fps: dict[str, float] = {}
    total_video_s = 0.0
    for name, row in metrics["per_video"].items():
        info = probe(real / name)
        fps[name] = info.fps
        video_s = int(row["frames"]) / info.fps  # every frame, at the native rate
        total_video_s += video_s
        per_video[name] = {
            "native_fps": round(info.fps, 2),
            "frames": row["frames"],
            "seconds": round(float(row["seconds"]), 2),
            "x_real_time": round(video_s / float(row["seconds"]), 2),
            "tracks_kept": row["tracks_kept"],
        }
    return {
        "per_video": per_video,
        "failures": [f["video"] for f in metrics["failures"]],
        "wall_seconds": metrics["wall_seconds"],
        "x_real_time_wall": total_video_s / metrics["wall_seconds"],
        "nodes": metrics["nodes"],
        "edges": metrics["edges"],
        "inter_same_object_heuristic": _same_object_heuristic(out),
        **_intra_motion(out, fps),
    }


def _train_encoder(mined: Path, out: Path) -> None:
    """A small triplet encoder on the mined pairs (the mine → pretrain → mine loop)."""
    params = out.parent / "pretrain-params.yaml"
    subprocess.run(
        [_SELFSUP, "params", "write", "--out", str(params), "--force"],
        check=True,
    )
    sets = {
        "pretrain.method": "triplet",
        "pretrain.epochs": 8,
        "pretrain.warmup_epochs": 0,
        "pretrain.batch_size": 128,
        "pretrain.num_workers": 0,
    }
    cmd = [_SELFSUP, "pretrain", "--params", str(params)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    subprocess.run([*cmd, "--data", str(mined), "--out", str(out)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--real", type=Path, help="folder of real clips (speed)")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=200, help="per clip (8 s at 25 fps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--arms", default="today,new,new-cross-video,new-encoder", help="comma-separated"
    )
    parser.add_argument("--keep", type=Path, help="keep the mined sets here")
    parser.add_argument(
        "--proposer",
        type=json.loads,
        default={},
        help="JSON CompensatedProposer options (new arms)",
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "src"
    arms = args.arms.split(",")
    defaults = MineParams()
    camera = synthetic_camera(defaults)
    report: dict[str, Any] = {"synthetic": {}, "real": {}}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = args.keep or Path(scratch_name)
        scratch.mkdir(parents=True, exist_ok=True)
        folder = scratch / "videos"
        began = time.perf_counter()
        write_synthetic_set(
            folder, args.videos, args.frames, (160, 224), 3, 4, args.seed, camera=camera
        )
        report["synthetic_clips"] = {
            "videos": args.videos,
            "frames": args.frames,
            "camera": camera.__dict__,
            "generation_seconds": time.perf_counter() - began,
        }
        plan: dict[str, tuple[Path, dict[str, Any], bool]] = {
            "today": (args.baseline_src, {}, False),
            "new": (here, {}, False),
            "new-cross-video": (here, {"inter_cross_video_only": True}, False),
            "new-encoder": (here, {}, True),
        }
        for arm in arms:
            src, overrides, with_encoder = plan[arm]
            encoder = ""
            if with_encoder:
                encoder_dir = scratch / "encoder"
                if not encoder_dir.exists():
                    base = scratch / "syn-new"
                    if not base.exists():
                        _mine(here, folder, base, {}, "")
                    _train_encoder(base, encoder_dir)
                encoder = str(encoder_dir)
            out = scratch / f"syn-{arm}"
            metrics = _mine(
                src, folder, out, overrides, encoder, args.proposer if src == here else None
            )
            report["synthetic"][arm] = _synthetic_report(out, metrics, camera.fps)
            print(arm, json.dumps(report["synthetic"][arm]), file=sys.stderr)
        if args.real:
            for arm in (a for a in arms if a in ("today", "new")):
                src = plan[arm][0]
                out = scratch / f"real-{arm}"
                metrics = _mine(src, args.real, out, {}, "", args.proposer if src == here else None)
                report["real"][arm] = _real_report(out, metrics, args.real)
                print(arm, json.dumps(report["real"][arm]), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
