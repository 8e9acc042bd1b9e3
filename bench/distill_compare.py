"""KRR-ST vs its baselines: transfer kNN and linear probe after pretraining on m images.

For each seed, a fresh encoder (the teacher's architecture) is pretrained by MSE to teacher-space
targets (``selfsup pretrain --method distilled``, same recipe for every arm) on m images:

* ``distilled``  learnt images + learnt targets from ``selfsup distill`` (KRR-ST);
* ``random``     the m real images the distillation started from, with teacher targets;
* ``kmeans``     the real image nearest to each of m k-means centres of the L2-normalised teacher
                 features of the real pool, with teacher targets;
* ``none``       no pretraining (random init, the floor);

and the teacher itself is the upper bound. Each encoder is scored on CIFAR-10 test by weighted kNN
(k=200, τ=0.07) and a linear probe (L-BFGS), bank/probe-train = a seeded train subset. Printed as
mean ± std over seeds (population std, n = seeds), whichever arm wins.

    python bench/distill_compare.py --data DATASET --teacher MODEL_DIR [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from selfsup.config import DistillParams, EvaluateParams, PretrainParams
from selfsup.data.shards import Split, load_split
from selfsup.distill.format import save_distilled
from selfsup.distill.stage import distill, initial_indices, real_subset
from selfsup.evaluate.stage import evaluate_encoder, random_init_encoder
from selfsup.mining.cluster import kmeans, l2_normalise
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.train import stage as pretrain

CPU = torch.device("cpu")


def _train_on_targets(
    images: torch.Tensor, targets: torch.Tensor, student: PretrainParams
) -> torch.nn.Module:
    """The pretrain stage's ``distilled`` method on ``(images, targets)`` written as a
    distilled set (uint8 real images scaled to [0, 1])."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "set").mkdir()
        save_distilled(root / "set", x, targets, {}, teacher="bench", data="bench")
        params = student.model_copy(update={"method": "distilled"})
        pretrain.run(root / "set", params=params, out=root / "model")
        return load_encoder(root / "model")[0]


def _subset(split: Split, size: int, seed: int) -> Split:
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:size]
    return Split(images=split.images[order], labels=split.labels[order])


def _score(
    encoder: torch.nn.Module, bank: Split, test: Split, probe_epochs: int
) -> dict[str, float]:
    result = evaluate_encoder(
        encoder,
        bank,
        test,
        EvaluateParams(probe_epochs=probe_epochs),
        labeled=True,
        num_classes=10,
        device=CPU,
    )
    return {"knn": float(result.knn_top1 or 0.0), "linear": float(result.linear_top1 or 0.0)}


def _kmeans_subset(features: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """Index of the member nearest to each k-means centre (one real image per cluster)."""
    points = l2_normalise(features.numpy())
    labels = kmeans(points, m, seed, attempts=1)
    chosen = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        centre = points[members].mean(axis=0)
        chosen.append(members[np.argmin(((points[members] - centre) ** 2).sum(axis=1))])
    return torch.as_tensor(np.array(chosen), dtype=torch.long)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared CIFAR-10 dataset")
    parser.add_argument("--teacher", type=Path, required=True, help="selfsup model directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--m", type=int, default=500, help="images per arm")
    parser.add_argument("--real-images", type=int, default=5_000, help="real pool (train)")
    parser.add_argument("--outer-steps", type=int, default=100)
    parser.add_argument("--image-lr", type=float, default=DistillParams().image_lr)
    parser.add_argument("--target-lr", type=float, default=DistillParams().target_lr)
    parser.add_argument("--student-epochs", type=int, default=30)
    parser.add_argument("--student-batch", type=int, default=100)
    parser.add_argument("--bank-size", type=int, default=4_000, help="kNN bank / probe train")
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    began = time.perf_counter()
    teacher, manifest = load_encoder(args.teacher)
    arch = PretrainParams.model_validate(manifest["params"])
    train, test = load_split(args.data, "train"), load_split(args.data, "test")
    bank, test = _subset(train, args.bank_size, 123), _subset(test, args.test_size, 456)
    upper = _score(teacher, bank, test, args.probe_epochs)
    print(json.dumps({"teacher": upper}), flush=True)
    rows = []
    for seed in args.seeds:
        real = real_subset(train.images, args.real_images, seed)
        features = embed(teacher, real)
        student = arch.model_copy(
            update={
                "method": "distilled",
                "epochs": args.student_epochs,
                "seed": seed,
                "batch_size": args.student_batch,
                "warmup_epochs": 1,
                "device": "cpu",
            }
        )
        params = DistillParams(
            num_images=args.m,
            real_images=args.real_images,
            outer_steps=args.outer_steps,
            image_lr=args.image_lr,
            target_lr=args.target_lr,
            seed=seed,
            device="cpu",
        )
        row: dict[str, float] = {"seed": seed}
        clock = time.perf_counter()
        images, targets, metrics = distill(
            teacher, real, params, PretrainParams(convnet_width=params.pool_width), CPU
        )
        row["distill_seconds"] = time.perf_counter() - clock
        row["krr_loss_first"], row["krr_loss_last"] = (
            metrics["outer_loss_first"],
            metrics["outer_loss_last"],
        )
        start = initial_indices(len(real), args.m, seed)
        clock = time.perf_counter()
        centres = _kmeans_subset(features, args.m, seed)
        row["kmeans_seconds"] = time.perf_counter() - clock
        arms = {
            "distilled": (images, targets),
            "random": (real[start], features[start]),
            "kmeans": (real[centres], features[centres]),
        }
        for name, (x, y) in arms.items():
            clock = time.perf_counter()
            encoder = _train_on_targets(x, y, student)
            row[f"{name}_train_seconds"] = time.perf_counter() - clock
            for metric, value in _score(encoder, bank, test, args.probe_epochs).items():
                row[f"{name}_{metric}"] = value
        for metric, value in _score(
            random_init_encoder(arch, seed), bank, test, args.probe_epochs
        ).items():
            row[f"none_{metric}"] = value
        rows.append(row)
        print(json.dumps(row), flush=True)

    def cell(key: str) -> str:
        values = [100 * r[key] for r in rows]
        return f"{statistics.mean(values):5.1f} ± {statistics.pstdev(values):3.1f}"

    print(f"\nm={args.m}, seeds={args.seeds}, test={args.test_size}, bank={args.bank_size}")
    print("| arm | kNN top-1 (%) | linear top-1 (%) |\n|---|---|---|")
    for arm in ("none", "random", "kmeans", "distilled"):
        print(f"| {arm} | {cell(f'{arm}_knn')} | {cell(f'{arm}_linear')} |")
    print(f"| teacher (upper bound) | {100 * upper['knn']:5.1f} | {100 * upper['linear']:5.1f} |")
    wins = sum(r["distilled_knn"] > r["random_knn"] for r in rows)
    print(
        f"distilled > random (kNN) in {wins}/{len(rows)} seeds; "
        f"total {time.perf_counter() - began:.0f} s"
    )
    if args.out:
        args.out.write_text(json.dumps({"teacher": upper, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
