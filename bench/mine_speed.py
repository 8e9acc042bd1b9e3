"""Mining speed on real clips, lever by lever, with time per phase (issue 17).

Mines every clip of ``--real`` at its native rate with default ``mine`` params, once per arm; an
arm is a name and a JSON dict of :class:`~selfsup.video.proposals.CompensatedProposer` options
(``--arm NAME=JSON``, repeatable; ``base={}`` is today's defaults). Arms run interleaved,
``--repeats`` rounds, and the best (lowest) time per clip is kept, since the machine is shared.
Per clip: wall seconds, × real time (clip seconds / wall seconds), process CPU seconds, tracks
kept and nodes; per arm, the seconds spent in each phase (decode, homography, background mask,
proposal boxes, NCC tracking), from wrapping those functions with a timer.

    python bench/mine_speed.py --real DIR --arm base='{}' --arm small='{"motion_width": 160}'
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfsup.config import MineParams
from selfsup.mining import extract
from selfsup.video import decode, proposals, track
from selfsup.video.decode import probe

PHASES: dict[str, float] = defaultdict(float)


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[name] += time.perf_counter() - began

    return wrapper


def _timed_iter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        iterator = fn(*args, **kwargs)
        while True:
            began = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                PHASES[name] += time.perf_counter() - began
                return
            PHASES[name] += time.perf_counter() - began
            yield item

    return wrapper


def _instrument() -> None:
    extract.read_frames = _timed_iter("decode", decode.read_frames)  # type: ignore[assignment]
    cp = proposals.CompensatedProposer
    cp.update = _timed("update (homography)", cp.update)  # type: ignore[method-assign]
    cp.mask = _timed("mask (warp, refine, median)", cp.mask)  # type: ignore[method-assign]
    cp.boxes = _timed("boxes (+ NCC filter)", cp.boxes)  # type: ignore[method-assign]
    nt = track.NccTracker
    nt.step = _timed("NCC tracking", nt.step)  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, required=True)
    parser.add_argument("--arm", action="append", required=True, help="NAME=JSON options")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--clips", default="box.mp4,cup.mp4,vtest.avi")
    args = parser.parse_args()
    _instrument()
    arms = {a.split("=", 1)[0]: json.loads(a.split("=", 1)[1]) for a in args.arm}
    params = MineParams(source="folder")
    clips = [args.real / name for name in args.clips.split(",")]
    best: dict[str, dict[str, dict[str, Any]]] = {arm: {} for arm in arms}
    phases: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for arm, options in arms.items():
            PHASES.clear()
            for clip in clips:
                wall, cpu = time.perf_counter(), time.process_time()
                result = extract.mine_video(clip, params, options)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                row = best[arm].get(clip.name)
                if row is None or wall < row["seconds"]:
                    video_s = result.frames / probe(clip).fps
                    best[arm][clip.name] = {
                        "seconds": round(wall, 2),
                        "cpu_seconds": round(cpu, 2),
                        "x_real_time": round(video_s / wall, 2),
                        "video_seconds": round(video_s, 2),
                        "tracks_kept": len(result.tracks),
                        "nodes": len(result.node_frames),
                    }
            phases[arm] = {k: round(v, 2) for k, v in PHASES.items()}  # the last round's
    report = {}
    for arm, rows in best.items():
        video_s = sum(r["video_seconds"] for r in rows.values())
        wall = sum(r["seconds"] for r in rows.values())
        report[arm] = {
            "options": arms[arm],
            "per_clip": rows,
            "x_real_time_all": round(video_s / wall, 2),
            "phases_seconds": phases[arm],
        }
        print(arm, json.dumps(report[arm]))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
