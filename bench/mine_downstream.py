"""Downstream value of mined pairs: SimCLR alone vs SimCLR + triplet on mined pairs, one run.

Both arms train the same encoder (default-profile ConvNet) from the same seed, for the same
epochs over the same CIFAR-10 images with the same SimCLR recipe; the mixed arm adds, each step,
``triplet_weight`` × the triplet loss of a batch of mined pairs (so it also sees ``batch_size``
pairs per step: more compute per step, reported as wall time). Both are scored by weighted kNN
(k=200, τ=0.07; bank: the prepared train split) on the prepared test split, next to a randomly
initialised encoder (the floor). Reported as measured, whichever arm wins.

    python bench/mine_downstream.py --data DATASET --mined MINED [--epochs 3] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from selfsup.config import PretrainParams
from selfsup.data.shards import load_split
from selfsup.evaluate.knn import knn_classify
from selfsup.models import build_encoder
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.train import stage as pretrain


def _knn(encoder: torch.nn.Module, data: Path) -> float:
    train, test = load_split(data, "train"), load_split(data, "test")
    bank, queries = embed(encoder, train.images), embed(encoder, test.images)
    result = knn_classify(bank, train.labels, queries, k=200, temperature=0.07)
    return float((result.predictions == test.labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared CIFAR-10 dataset")
    parser.add_argument("--mined", type=Path, required=True, help="selfsup mine output")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-images", type=int, default=12_800)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for seed in args.seeds:
        base = PretrainParams(
            epochs=args.epochs, max_images=args.max_images, seed=seed, num_workers=1, device="cpu"
        )
        torch.manual_seed(seed)
        row: dict[str, float] = {
            "seed": seed,
            "random_init_knn": _knn(build_encoder(base), args.data),
        }
        with tempfile.TemporaryDirectory() as scratch:
            for method in ("simclr", "simclr+triplet"):
                params = base.model_copy(update={"method": method})
                began = time.perf_counter()
                pretrain.run(
                    args.data,
                    params=params,
                    out=Path(scratch) / method,
                    pairs=args.mined if method != "simclr" else None,
                )
                row[f"{method}_seconds"] = time.perf_counter() - began
                row[f"{method}_knn"] = _knn(load_encoder(Path(scratch) / method)[0], args.data)
        row["difference"] = row["simclr+triplet_knn"] - row["simclr_knn"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "seed"}
    print(json.dumps({"mean_over_seeds": mean, "seeds": args.seeds}, indent=2))


if __name__ == "__main__":
    main()
