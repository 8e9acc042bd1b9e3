"""Training speed of CPU levers, one at a time, on the real pretrain stage, in the same run.

Each arm is the ``default`` profile's pretrain params plus ``--set``-style overrides, trained by
``selfsup.train.stage.run`` (the code ``selfsup pretrain`` runs: DataLoader workers making the
views, the step, the optimiser, checkpoints) on a prepared dataset. An arm's speed is the images/s
of its *last* epoch, so start-up, the first epoch's allocator warm-up and (for ``torch.compile``)
compilation are left out; the compile arm also reports its first-epoch seconds. Arms run
interleaved, ``--rounds`` times; the report gives each arm's median and its ratio to the named
baseline arm (``fp32``) computed within each round, then the median ratio.

``compile`` is used on CUDA only by :mod:`selfsup.train.accel`; the ``compile`` arm forces it on
here (the only reason this script touches ``accel``), to measure what the CPU would gain.

    python bench/cpu_levers.py --data artifacts/data [--images 7680] [--epochs 2] [--rounds 3]
        [--arm NAME=key=value,key=value ...] [--only fp32,bf16] [--jsonl out.jsonl]
        [--whole-run]    # images/s over all epochs, for schedules (progressive resizing)

``--accuracy`` checks that a recipe learns the same: each arm trains at the *profile's* full
budget (or ``--images``/``--epochs`` when given) for every ``--seeds`` seed, and is scored by
``selfsup evaluate``'s own code (:func:`selfsup.evaluate.stage.evaluate_encoder`: weighted kNN on
the prepared test split with the train split as the bank, and the linear probe). It prints mean ±
std per arm and the training wall time; an arm matches the baseline when the intervals overlap.

    python bench/cpu_levers.py --data artifacts/data --accuracy --seeds 0 1 2 \
        --only bf16+cl+workers0

A prepared dataset: ``selfsup data prepare --params params.yaml --out artifacts/data`` with
``data.archive`` set to the CIFAR-10 JPEG archive (``make run`` prepares it too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfsup.config import PretrainParams, apply_overrides, profile_params, validate_params
from selfsup.data.shards import load_split, read_dataset_manifest
from selfsup.evaluate.stage import evaluate_encoder
from selfsup.models.artifact import load_encoder
from selfsup.train import accel
from selfsup.train import stage as pretrain

BASELINE = "fp32"
# Every arm spells out the four options the default profile changed in issue 18, so the arms
# mean the same whatever the defaults are: the baseline is the recipe before it (fp32, NCHW, one
# DataLoader worker making the views, full-size views in every epoch).
_FP32 = ["precision=fp32", "channels_last=false", "num_workers=1", "progressive_resize=null"]
_FAST = ["precision=bf16", "channels_last=true", "num_workers=1", "progressive_resize=null"]
ARMS: dict[str, list[str]] = {
    "fp32": _FP32,
    "bf16": ["precision=bf16", "channels_last=false", "num_workers=1"],
    "channels-last": ["precision=fp32", "channels_last=true", "num_workers=1"],
    "bf16+channels-last": _FAST,
    "bf16+cl+compile": [*_FAST, "compile=true"],
    "bf16+cl+views-in-step": [*_FAST, "augment.placement=device"],
    "bf16+cl+torchvision-views": [*_FAST, "augment.backend=torchvision"],
    "bf16+cl+workers0": [*_FAST, "num_workers=0"],
    "bf16+cl+batch512-lars": [*_FAST, "batch_size=512", "optimizer=lars"],
    # The default since issue 18: the first half of the epochs at 24 px (BENCHMARKS.md).
    "bf16+cl+workers0+progressive24": [
        *_FAST,
        "num_workers=0",
        "progressive_resize.min_size=24",
        "progressive_resize.hold=0.5",
        "progressive_resize.ramp=0",
    ],
}


def arm_params(
    overrides: Sequence[str], images: int | None, epochs: int | None, seed: int = 0
) -> PretrainParams:
    """The default profile's pretrain params with ``pretrain.``-relative overrides (``images`` /
    ``epochs`` None: the profile's own budget)."""
    raw = profile_params("default").model_dump()
    sets = [f"pretrain.{item}" for item in overrides] + [f"pretrain.seed={seed}"]
    if images is not None:
        sets.append(f"pretrain.max_images={images}")
    if epochs is not None:
        sets += [f"pretrain.epochs={epochs}", "pretrain.warmup_epochs=0"]
    return validate_params(apply_overrides(raw, sets), "cpu_levers arm").pretrain


def _compile_kept(p: PretrainParams, device: Any) -> accel.Accel:
    """``accel.resolve`` with ``compile`` kept on a CPU too (only the compile arm asks for it)."""
    fast = _RESOLVE(p, device)
    return accel.Accel(fast.bf16, fast.channels_last, p.compile, fast.device_views)


_RESOLVE = accel.resolve


def measure(data: Path, params: PretrainParams) -> dict[str, float]:
    """Train one arm from scratch; its last epoch's images/s, its whole run's (every epoch's
    images over the epochs' seconds: what a schedule such as progressive resizing changes) and
    its first epoch's seconds."""
    real = pretrain.gpu.resolve
    pretrain.gpu.resolve = _compile_kept  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            metrics = pretrain.run(data, params=params, out=Path(tmp) / "encoder")
    finally:
        pretrain.gpu.resolve = real  # type: ignore[assignment]
    seconds = [float(t) for t in metrics["epoch_seconds"]]
    images = sum(r * t for r, t in zip(metrics["images_per_second"], seconds, strict=True))
    return {
        "images_per_second": float(metrics["images_per_second"][-1]),
        "run_images_per_second": images / sum(seconds),
        "first_epoch_seconds": float(metrics["epoch_seconds"][0]),
        "final_loss": float(metrics["final_loss"]),
    }


def score(data: Path, params: PretrainParams) -> dict[str, float]:
    """Train one arm at its full budget and score it as ``selfsup evaluate`` does."""
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        pretrain.run(data, params=params, out=Path(tmp) / "encoder")
        seconds = time.perf_counter() - began
        encoder, _ = load_encoder(Path(tmp) / "encoder")
    train, test = load_split(data, "train"), load_split(data, "test")
    classes = len(read_dataset_manifest(data)["class_names"])
    evaluate = profile_params("default").evaluate
    result = evaluate_encoder(encoder, train, test, evaluate, labeled=True, num_classes=classes)
    assert result.knn_top1 is not None and result.linear_top1 is not None
    return {"knn_top1": result.knn_top1, "linear_top1": result.linear_top1, "seconds": seconds}


def accuracy(args: argparse.Namespace, arms: dict[str, list[str]]) -> None:
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    for seed in args.seeds:
        for name, sets in arms.items():
            row = score(args.data, arm_params(sets, args.images, args.epochs, seed))
            rows[name].append(row)
            print(f"seed {seed} {name:28s} {json.dumps(row)}", flush=True)
            if args.jsonl:
                with args.jsonl.open("a") as f:
                    record = {"bench": "cpu_levers --accuracy", "arm": name, "seed": seed}
                    f.write(json.dumps(record | {"overrides": sets} | row) + "\n")
    print(f"\n{'arm':28s} {'kNN top-1':>16s} {'linear top-1':>16s} {'train s':>8s}")
    for name, runs in rows.items():
        cells = []
        for key in ("knn_top1", "linear_top1"):
            values = [100 * r[key] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):7.2f} ± {spread:5.2f}")
        seconds = statistics.fmean(r["seconds"] for r in runs)
        print(f"{name:28s} {cells[0]:>16s} {cells[1]:>16s} {seconds:8.0f}")


def _parse_arm(text: str) -> tuple[str, list[str]]:
    name, _, sets = text.partition("=")
    if not name or not sets:
        raise SystemExit(f"--arm {text!r}: expected NAME=key=value[,key=value]")
    return name, sets.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, help="speed: 7680; accuracy: the profile's")
    parser.add_argument("--epochs", type=int, help="speed: 2; accuracy: the profile's")
    parser.add_argument("--accuracy", action="store_true", help="score full-budget runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arm", action="append", default=[], help="NAME=key=value,...")
    parser.add_argument("--only", default="", help="comma-separated arm names to run")
    parser.add_argument("--jsonl", type=Path)
    parser.add_argument(
        "--whole-run",
        action="store_true",
        help="speed: images/s over every epoch (schedules), not the last epoch's",
    )
    args = parser.parse_args()

    arms = dict(ARMS) | dict(_parse_arm(a) for a in args.arm)
    if args.only:
        names = [n for n in args.only.split(",") if n != BASELINE]
        # Speed ratios need the baseline in every round; accuracy runs compare to a recorded one.
        wanted = names if args.accuracy else [BASELINE, *names]
        unknown = [n for n in wanted if n not in arms]
        if unknown:
            raise SystemExit(f"--only: unknown arms {unknown}; known: {sorted(arms)}")
        arms = {name: arms[name] for name in wanted}
    if args.accuracy:
        accuracy(args, arms)
        return
    images, epochs = args.images or 7680, args.epochs or 2
    params = {name: arm_params(sets, images, epochs) for name, sets in arms.items()}
    speed_key = "run_images_per_second" if args.whole_run else "images_per_second"

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    ratios: dict[str, list[float]] = {name: [] for name in arms}
    for round_ in range(args.rounds):
        order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
        for name in order:
            runs[name].append(measure(args.data, params[name]))
            result = runs[name][-1]
            print(
                f"round {round_ + 1} {name:28s} {result[speed_key]:8.1f} img/s "
                f"first epoch {result['first_epoch_seconds']:6.1f} s",
                flush=True,
            )
        base = runs[BASELINE][-1][speed_key]
        for name in arms:
            ratios[name].append(runs[name][-1][speed_key] / base)

    print(f"\n{'arm':28s} {'median img/s':>12s} {'x ' + BASELINE:>10s}  per-round ratios")
    report = []
    for name in arms:
        speed = statistics.median(r[speed_key] for r in runs[name])
        ratio = statistics.median(ratios[name])
        rounds = " ".join(f"{r:.2f}" for r in ratios[name])
        print(f"{name:28s} {speed:12.1f} {ratio:10.2f}  {rounds}")
        report.append(
            {
                "arm": name,
                "overrides": arms[name],
                "median_images_per_second": speed,
                "median_ratio": ratio,
                "ratios": ratios[name],
                "runs": runs[name],
            }
        )
    if args.jsonl:
        with args.jsonl.open("a") as f:
            record = {"bench": "cpu_levers", "images": images, "epochs": epochs, "speed": speed_key}
            f.write(json.dumps(record | {"arms": report}) + "\n")


if __name__ == "__main__":
    main()
