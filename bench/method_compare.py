"""Pretraining methods at equal budget on CIFAR-10: kNN / linear / RankMe, mean ± std over seeds.

Every method trains the default-profile ConvNet with the same recipe (AdamW, batch 256, the same
augmentations) for the same epochs over the same seeded CIFAR-10 subset, from the same seed; only
``pretrain.method`` differs. ``groco+mined`` and ``simclr+triplet`` also take one batch of mined
pairs per step (``--mined``, a ``selfsup mine`` output), so they do more compute per step: their
wall time is reported. ``gsimclr``'s time includes its autoencoder + k-means, and its NMI of
pseudo-labels vs the true labels is reported. Scores: ``selfsup evaluate``'s metrics
(:func:`selfsup.evaluate.stage.evaluate_encoder`: weighted kNN k=200 with the train split as the
bank, an L-BFGS linear probe, RankMe on train features) on the prepared test split.

A method differs from ``simclr`` only when the mean ± std intervals do not overlap; otherwise the
table calls it a tie.

    python bench/method_compare.py --data DATASET --mined MINED [--epochs 1] [--seeds 0 1 2]
    python bench/method_compare.py --data DATASET --methods simclr byol --epochs 5 \
        --max-images 25600      # BYOL vs SimCLR at the default profile's budget

With a 5,000-image train split (500 per class) and 1 epoch, the 18 runs took about 40 minutes
on the shared 2-core machine (BENCHMARKS.md); ``--table-from`` re-renders a ``--jsonl`` file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from selfsup.config import EvaluateParams, PretrainParams
from selfsup.data.shards import load_split, read_dataset_manifest
from selfsup.evaluate.stage import evaluate_encoder, random_init_encoder
from selfsup.losses import nt_xent
from selfsup.losses.groco import groco_loss, same_image_mask
from selfsup.models.artifact import load_encoder
from selfsup.train import stage as pretrain

METHODS = ("simclr", "groco", "groco+mined", "gsimclr", "simclr+triplet", "simclr-topk", "byol")
MINED = ("groco+mined", "simclr+triplet")
METRICS = ("knn_top1", "linear_top1", "rankme")


def _floor(seed: int, args: argparse.Namespace, evaluate: EvaluateParams) -> dict[str, Any]:
    """The same scores for a randomly initialised encoder (the floor every method starts from)."""
    train, test = load_split(args.data, "train"), load_split(args.data, "test")
    classes = len(read_dataset_manifest(args.data)["class_names"])
    encoder = random_init_encoder(PretrainParams(seed=seed), seed)
    result = evaluate_encoder(encoder, train, test, evaluate, labeled=True, num_classes=classes)
    return {
        "method": "random-init",
        "seed": seed,
        "knn_top1": result.knn_top1,
        "linear_top1": result.linear_top1,
        "rankme": result.rankme.value,
        "train_seconds": 0.0,
    }


def _run(
    method: str, seed: int, args: argparse.Namespace, scratch: Path, evaluate: EvaluateParams
) -> dict[str, Any]:
    params = PretrainParams(
        method=method,  # type: ignore[arg-type]
        epochs=args.epochs,
        max_images=args.max_images,
        seed=seed,
        num_workers=1,
        device="cpu",
    )
    out = scratch / f"{method}-{seed}"
    began = time.perf_counter()
    trained = pretrain.run(
        args.data, params=params, out=out, pairs=args.mined if method in MINED else None
    )
    seconds = time.perf_counter() - began
    train, test = load_split(args.data, "train"), load_split(args.data, "test")
    classes = len(read_dataset_manifest(args.data)["class_names"])
    result = evaluate_encoder(
        load_encoder(out)[0], train, test, evaluate, labeled=True, num_classes=classes
    )
    row = {
        "method": method,
        "seed": seed,
        "knn_top1": result.knn_top1,
        "linear_top1": result.linear_top1,
        "rankme": result.rankme.value,
        "train_seconds": seconds,
        "final_loss": trained["final_loss"],
    }
    if "gsimclr_nmi" in trained:
        row["gsimclr_nmi"] = trained["gsimclr_nmi"]
    return row


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _table(rows: list[dict[str, Any]], methods: list[str]) -> str:
    stats = {
        m: {
            k: _mean_std([r[k] for r in rows if r["method"] == m])
            for k in (*METRICS, "train_seconds")
        }
        for m in methods
    }
    lines = [
        "| method | kNN top-1 | linear top-1 | RankMe | train s/run | vs simclr (kNN/lin/RankMe) |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        cells = []
        for k in METRICS:
            mean, std = stats[m][k]
            scale = 100.0 if k != "rankme" else 1.0
            cells.append(f"{mean * scale:.2f} ± {std * scale:.2f}")
        verdicts = []
        if m not in ("simclr", "random-init") and "simclr" in stats:
            for k in METRICS:
                (a, sa), (b, sb) = stats[m][k], stats["simclr"][k]
                if abs(a - b) <= sa + sb:
                    verdicts.append("tie")
                else:
                    verdicts.append("better" if a > b else "worse")
        seconds = stats[m]["train_seconds"][0]
        runs = sum(r["method"] == m for r in rows)
        verdict = ", ".join(verdicts) or "-"
        lines.append(f"| {m} (n={runs}) | {' | '.join(cells)} | {seconds:.0f} | {verdict} |")
    nmi = [r["gsimclr_nmi"] for r in rows if "gsimclr_nmi" in r]
    if nmi:
        mean, std = _mean_std(nmi)
        lines.append(f"\ngsimclr pseudo-label NMI vs true labels: {mean:.3f} ± {std:.3f}")
    return "\n".join(lines)


def loss_timing(batch: int = 256, dim: int = 128, repeats: int = 20) -> str:
    """Median forward+backward ms of each method's view loss alone, in this one process."""
    z1, z2 = (
        torch.randn(batch, dim, requires_grad=True),
        torch.randn(batch, dim, requires_grad=True),
    )
    lines = [
        f"| loss (N={batch}, D={dim}) | fwd+bwd ms (median of {repeats}) |",
        "|---|---|",
    ]
    p = PretrainParams()
    losses = {  # the objectives of selfsup.train.methods.views at the default params
        "simclr": lambda: nt_xent(z1, z2, temperature=p.temperature),
        "simclr-topk": lambda: nt_xent(z1, z2, temperature=p.temperature, top_k=p.groco_k),
        "groco": lambda: groco_loss(
            torch.cat([z1, z2]),
            same_image_mask(batch),
            k=p.groco_k,
            steepness=p.groco_steepness,
            max_positives=p.groco_max_positives,
        ),
    }
    for method, loss in losses.items():
        times = []
        for _ in range(repeats + 2):
            began = time.perf_counter()
            loss().backward()  # type: ignore[no-untyped-call]
            times.append(time.perf_counter() - began)
        lines.append(f"| {method} | {statistics.median(times[2:]) * 1000:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared CIFAR-10 dataset")
    parser.add_argument("--mined", type=Path, help="selfsup mine output")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-images", type=int, default=5_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--probe-epochs", type=int, default=100, help="L-BFGS iterations")
    parser.add_argument("--jsonl", type=Path, help="also append each run's row here")
    parser.add_argument("--table-from", type=Path, help="only print the table of a --jsonl file")
    parser.add_argument("--loss-timing", action="store_true", help="only time the losses alone")
    parser.add_argument("--floor", action="store_true", help="also score random-init encoders")
    args = parser.parse_args()
    if args.loss_timing:
        torch.set_num_threads(2)
        print(loss_timing())
        return
    if args.table_from:
        rows = [json.loads(line) for line in args.table_from.read_text().splitlines() if line]
        order = ("random-init", *METHODS)
        print(_table(rows, [m for m in order if any(r["method"] == m for r in rows)]))
        return
    if args.data is None:
        parser.error("--data is required to run")
    if args.mined is None and set(args.methods) & set(MINED):
        parser.error(f"--mined is required by {sorted(set(args.methods) & set(MINED))}")
    torch.set_num_threads(2)
    evaluate = EvaluateParams(probe_epochs=args.probe_epochs)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            for method in (["random-init"] if args.floor else []) + args.methods:
                row = (
                    _floor(seed, args, evaluate)
                    if method == "random-init"
                    else _run(method, seed, args, Path(scratch), evaluate)
                )
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.jsonl:
                    with args.jsonl.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    print(_table(rows, (["random-init"] if args.floor else []) + args.methods))


if __name__ == "__main__":
    main()
