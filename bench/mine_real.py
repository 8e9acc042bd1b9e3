"""Mining the real clips: counts per video and edge type, throughput vs decoding and real time.

Mines every video in ``--videos`` (default ``$SELFSUP_VIDEO_DIR``) with the default
``mine`` params into ``--out`` (a mined dataset with ``contact_sheet.png``) and prints, per video,
tracks started/kept and nodes, the totals of each edge type and the failures. Throughput on
``--clip`` (vtest.avi: 768×576 at 10 fps) is mining frames/s next to a decode-only pass over the
same file measured in the same run (the floor no miner can beat), and the real-time factor
(video seconds / processing seconds).

    python bench/mine_real.py [--videos DIR] [--out reports/mine_real] [--clip vtest.avi]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from selfsup.config import VIDEO_DIR_ENV, MineParams
from selfsup.mining import stage
from selfsup.mining.extract import mine_video
from selfsup.video.decode import probe, read_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=os.environ.get(VIDEO_DIR_ENV))
    parser.add_argument("--out", type=Path, default=Path("reports/mine_real"))
    parser.add_argument("--clip", default="vtest.avi")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.videos is None:
        parser.error(f"pass --videos or set ${VIDEO_DIR_ENV}")
    params = MineParams(source="folder")
    metrics = stage.run(args.videos, params=params, out=args.out / "mined")

    clip = args.videos / args.clip
    info = probe(clip)
    decode_s, mine_s = [], []
    for _ in range(args.repeats):  # best of N: the machine is shared
        began = time.perf_counter()
        frames = sum(1 for _ in read_frames(clip))
        decode_s.append(time.perf_counter() - began)
        mine_s.append(mine_video(clip, params).seconds)
    decode_fps, mine_fps = frames / min(decode_s), frames / min(mine_s)
    report = {
        "videos": metrics["videos"],
        "failures": metrics["failures"],
        "per_video": metrics["per_video"],
        "tracks_started": metrics["tracks_started"],
        "tracks_drifted": metrics["tracks_drifted"],
        "tracks_kept": metrics["tracks_kept"],
        "nodes": metrics["nodes"],
        "edges": metrics["edges"],
        "contact_sheet": str(args.out / "mined" / "contact_sheet.png"),
        "throughput": {
            "clip": args.clip,
            "frames": frames,
            "size": [info.width, info.height],
            "native_fps": info.fps,
            "decode_only_fps": decode_fps,
            "mining_fps": mine_fps,
            "mining_vs_decode_ratio": mine_fps / decode_fps,
            "real_time_factor": mine_fps / info.fps,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
