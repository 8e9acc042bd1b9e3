"""``selfsup mine``: videos → object graph with transitive positive pairs, as a dataset directory.

Output (``kind: dataset``, readable by :func:`selfsup.data.shards.load_split`): the patches as the
``train`` split (labels: ground-truth class for synthetic video, -1 otherwise), the graph in
``graph/nodes.csv`` + ``graph/edges.csv``, ``contact_sheet.png`` of mined pairs, and the manifest.
:func:`run` mines in one process; :func:`run_shard` + :func:`run_merge` are the same work fanned
out (one shard per task), and give the same dataset.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import VIDEO_DIR_ENV, MineParams
from selfsup.data.shards import Split, write_dataset
from selfsup.errors import ConfigError, DataError
from selfsup.mining.cluster import NodeInfo, inter_edges, kmeans, l2_normalise
from selfsup.mining.contact import contact_sheet
from selfsup.mining.features import encoder_features, hog_features
from selfsup.mining.graph import Graph, write_graph
from selfsup.mining.quality import graph_quality
from selfsup.mining.shard import (
    ShardData,
    combine,
    load_shard,
    mine_shard,
    save_shard,
    shard_videos,
)
from selfsup.mining.synthetic import CLASS_NAMES, Camera, write_synthetic_set
from selfsup.mining.transitive import transitive_pairs
from selfsup.store import atomic_directory
from selfsup.video.fetch import fetch_videos, is_remote

log = logging.getLogger("selfsup.mine")


def list_videos(
    params: MineParams,
    video_dir: str | Path | None,
    scratch: Path,
    shard: tuple[int, int] | None = None,
) -> list[Path]:
    """The videos to mine: ``video_dir``, else ``params.video_dir``, else ``$SELFSUP_VIDEO_DIR``
    — a local folder or ``s3://bucket/prefix`` (downloaded into ``scratch``); with
    ``shard=(index, count)`` only that shard's videos (and only those are downloaded).
    """
    where = str(video_dir or params.video_dir or os.environ.get(VIDEO_DIR_ENV) or "")
    if not where:
        raise ConfigError(
            f"no videos to mine: set mine.video_dir, ${VIDEO_DIR_ENV} or --videos "
            "(or mine.source: synthetic)"
        )
    suffixes = {s.lower() for s in params.extensions}
    if is_remote(where):
        return fetch_videos(where, suffixes, scratch / "fetched", shard)
    root = Path(where).expanduser()
    if not root.is_dir():
        raise DataError(f"video directory {root} does not exist")
    paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not paths:
        raise DataError(f"{root} holds no video with extension {sorted(suffixes)}")
    return shard_videos(paths, shard[1], shard[0]) if shard else paths


def _synthetic(params: MineParams, where: Path) -> list[Path]:
    height, width = params.synthetic_size
    return write_synthetic_set(
        where,
        params.synthetic_videos,
        params.synthetic_frames,
        (height, width),
        params.synthetic_objects,
        params.synthetic_classes,
        params.seed,
        synthetic_camera(params),
    )


def synthetic_camera(params: MineParams) -> Camera:
    """The camera motion, clutter and rate of the synthetic clips ``params`` ask for."""
    return Camera(
        pan=params.synthetic_pan,
        zoom=params.synthetic_zoom,
        clutter=params.synthetic_clutter,
        fps=params.synthetic_fps,
    )


def build_graph(
    shard: ShardData, params: MineParams, encoder: Path | None
) -> tuple[Graph, np.ndarray, dict[str, float]]:
    """Nodes and intra edges from the records; inter edges by clustering; transitive pairs."""
    videos: list[str] = []
    frames: list[int] = []
    seconds: list[float] = []
    boxes: list[list[float]] = []
    tracks: list[int] = []
    gt_instance: list[int] = []
    gt_class: list[int] = []
    track_offset = instance_offset = 0
    for record in shard.records:
        local = record["node_tracks"]
        videos += [record["video"]] * len(local)
        frames += record["node_frames"]
        seconds += [f / float(record["fps"]) for f in record["node_frames"]]
        boxes += record["node_boxes"]
        tracks += [track_offset + t for t in local]
        gt_instance += [instance_offset + g if g >= 0 else -1 for g in record["gt_instance"]]
        gt_class += record["gt_class"]
        track_offset += record["tracks_started"]
        instance_offset += max(record["gt_instance"], default=-1) + 1  # ids unique per video
    patches = (
        np.concatenate(shard.patches)
        if shard.patches
        else np.zeros((0, params.patch_size, params.patch_size, 3), np.uint8)
    )
    track_arr = np.asarray(tracks, np.int64)
    # A chain of nodes per track, in order: consecutive nodes of one track are the intra edges.
    chain = np.flatnonzero(track_arr[1:] == track_arr[:-1]).astype(np.int64)
    intra = np.stack([chain, chain + 1], 1).reshape(-1, 2)
    timings: dict[str, float] = {}
    began = time.perf_counter()
    inter = np.zeros((0, 2), np.int64)
    if len(track_arr) >= 2:
        feats = encoder_features(patches, encoder) if encoder else hog_features(patches)
        timings["feature_seconds"] = time.perf_counter() - began
        labels = kmeans(
            l2_normalise(feats), round(len(track_arr) / params.cluster_ratio), params.seed
        )
        nodes = NodeInfo(
            tracks=track_arr,
            videos=np.unique(np.asarray(videos), return_inverse=True)[1],
            seconds=np.asarray(seconds, np.float64),
            boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        )
        inter = inter_edges(
            labels,
            nodes,
            params.cluster_size_min,
            params.cluster_size_max,
            params.inter_window_seconds,
            params.inter_cross_video_only,
        )
    timings["cluster_seconds"] = time.perf_counter() - began
    trans = transitive_pairs(intra, inter)
    edges = np.concatenate([intra, inter, trans]).astype(np.int64).reshape(-1, 2)
    types = ["intra"] * len(intra) + ["inter"] * len(inter) + ["transitive"] * len(trans)
    graph = Graph(
        videos=videos,
        frames=np.asarray(frames, np.int64),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        tracks=track_arr,
        gt_instance=np.asarray(gt_instance, np.int64),
        gt_class=np.asarray(gt_class, np.int64),
        edges=edges,
        edge_types=types,
    )
    return graph, patches, timings


def _metrics(shard: ShardData, graph: Graph, params: MineParams) -> dict[str, Any]:
    frames = sum(int(r["frames"]) for r in shard.records)
    seconds = sum(float(r["seconds"]) for r in shard.records)
    video_seconds = sum(float(r["video_seconds"]) for r in shard.records)
    metrics: dict[str, Any] = {
        "videos": len(shard.records),
        "failures": shard.failures,
        "frames": frames,
        "tracking_seconds": seconds,
        "frames_per_second": frames / seconds if seconds else 0.0,
        "real_time_factor": video_seconds / seconds if seconds else 0.0,
        "tracks_started": sum(int(r["tracks_started"]) for r in shard.records),
        "tracks_drifted": sum(int(r["tracks_drifted"]) for r in shard.records),
        "tracks_kept": sum(int(r["tracks_kept"]) for r in shard.records),
        "nodes": graph.num_nodes,
        "edges": graph.counts(),
        "per_video": {
            r["video"]: {k: r[k] for k in ("frames", "tracks_started", "tracks_kept", "seconds")}
            for r in shard.records
        },
    }
    ious = [v for r in shard.records for v in r["track_ious"]]
    if ious:
        metrics["synthetic"] = {
            "track_iou_mean": float(np.mean([x for t in ious for x in t])),
            "track_last_iou_above_0_5": float(np.mean([t[-1] > 0.5 for t in ious])),
            **graph_quality(graph, params.synthetic_classes),
        }
    return metrics


def write_mined(
    out: Path, shard: ShardData, params: MineParams, encoder: Path | None, inputs: list[str]
) -> dict[str, Any]:
    """Build the graph from a (combined) shard and write the dataset directory ``out``."""
    if not shard.records:
        raise DataError(f"no video could be mined; failures: {shard.failures}")
    graph, patches, timings = build_graph(shard, params, encoder)
    metrics = {**_metrics(shard, graph, params), **timings}
    # Class names come from the source: only clips with ground truth (the generator's) have them;
    # real video mined under the default `source: synthetic` is not labelled disc/square/...
    synthetic = all(bool(r.get("truth")) for r in shard.records)
    with atomic_directory(out) as tmp:
        write_graph(tmp, graph)
        metrics["contact_sheet_pairs"] = contact_sheet(
            graph, patches, tmp / "contact_sheet.png", params.contact_pairs, params.seed
        )
        images = torch.from_numpy(patches).permute(0, 3, 1, 2).contiguous()
        write_dataset(
            tmp,
            {"train": Split(images=images, labels=torch.from_numpy(graph.gt_class))},
            source="mined-video",
            class_names=CLASS_NAMES[: params.synthetic_classes] if synthetic else [],
            params=params.model_dump(),
            graph={"nodes": graph.num_nodes, "edges": graph.counts()},
            failures=shard.failures,
            inputs=inputs,
        )
    log.info("mined %d nodes, edges %s", graph.num_nodes, graph.counts())
    return metrics


def run(
    videos: str | Path | None = None,
    encoder: Path | None = None,
    *,
    params: MineParams,
    out: Path,
) -> dict[str, Any]:
    """Mine every shard in this process (in order), merge, write ``out``; returns metrics.

    ``videos``: a folder or ``s3://`` prefix (default: ``params.video_dir``,
    ``$SELFSUP_VIDEO_DIR``, or the seeded synthetic set); ``encoder``: a model directory whose
    features cluster the patches (default: HOG).
    """
    with tempfile.TemporaryDirectory(prefix="selfsup-synthetic-") as scratch:
        if params.source == "synthetic" and videos is None:
            paths = _synthetic(params, Path(scratch))
        else:
            paths = list_videos(params, videos, Path(scratch))
        shards = [
            mine_shard(shard_videos(paths, params.num_shards, i), params)
            for i in range(params.num_shards)
        ]
        return write_mined(Path(out), combine(shards), params, encoder, [p.name for p in paths])


def run_shard(
    index: int, videos: str | Path | None = None, *, params: MineParams, out: Path
) -> dict[str, Any]:
    """Mine shard ``index`` of ``params.num_shards`` into the shard directory ``out``.

    With ``source: synthetic`` (and no ``videos``) each shard generates the whole seeded set and
    keeps its own share, so shards agree with :func:`run` without sharing files.
    """
    with tempfile.TemporaryDirectory(prefix="selfsup-videos-") as scratch:
        if not 0 <= index < params.num_shards:
            raise DataError(f"shard index {index} is outside 0..{params.num_shards - 1}")
        if params.source == "synthetic" and videos is None:
            everything = _synthetic(params, Path(scratch))
            paths = shard_videos(everything, params.num_shards, index)
        else:
            paths = list_videos(params, videos, Path(scratch), (index, params.num_shards))
        shard = mine_shard(paths, params)
    with atomic_directory(Path(out)) as tmp:
        save_shard(tmp, shard, params)
    return {"videos": len(shard.records), "failures": shard.failures}


def run_merge(
    shards: list[Path], encoder: Path | None = None, *, params: MineParams, out: Path
) -> dict[str, Any]:
    """Merge shard directories (any order) into the mined dataset ``out``."""
    loaded = [load_shard(Path(d)) for d in shards]
    inputs = sorted(str(r["video"]) for s in loaded for r in s.records)
    return write_mined(Path(out), combine(loaded), params, encoder, inputs)
