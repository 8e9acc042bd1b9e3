"""Label-Agnostic Forgetting vs its baselines on CIFAR-10, forget class 0, one run.

Prepares a stratified CIFAR-10 subset (default 500 train / 200 test images per class), pretrains
the "original" encoder on all of it (default-profile ConvNet, SimCLR), then serves a deletion
request for every training image of class 0 with ``selfsup.unlearn.stage.run`` — LAF, LAF+R and
the no-op / fine-tune / retrain baselines in the same process, each timed — and prints the gaps
to retraining next to the authors' CIFAR-10 figures (ResNet-18, full data). Retrain = SimCLR
pretraining with the same params on the remaining images + a linear-probe head.

    SELFSUP_CIFAR10_ARCHIVE=/path/cifar10-jpg.tar.gz python bench/unlearn_compare.py

Defaults take about 16 minutes on the shared 2-core CPU (load ≈ 6); set OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from selfsup.config import CIFAR10_ARCHIVE_ENV, DataParams, PretrainParams, UnlearnParams
from selfsup.data import stage as data_stage
from selfsup.data.shards import load_split
from selfsup.train import stage as pretrain
from selfsup.unlearn import stage
from selfsup.unlearn.ids import format_id

# Shen et al. (ICLR 2024), CIFAR-10, forget class 0, ResNet-18 (quoted in issue #7).
PAPER = {
    "retrain": {"acc_test_remaining": 0.851, "acc_forget": 0.0},
    "laf": {"acc_test_remaining": 0.805, "acc_forget": 0.020, "attack": 0.476},
}


def _fmt(value: Any) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=os.environ.get(CIFAR10_ARCHIVE_ENV))
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--forget-class", type=int, default=0)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--laf-epochs", type=int, default=None, help="unlearn.epochs override")
    parser.add_argument(
        "--laf-lr", type=float, default=None, help="unlearn.ue_lr and ra_lr override"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write all metrics here")
    args = parser.parse_args()
    if not args.archive:
        parser.error(f"--archive or ${CIFAR10_ARCHIVE_ENV} is required")
    with tempfile.TemporaryDirectory(prefix="unlearn-bench-") as scratch:
        root = Path(scratch)
        data_params = DataParams(
            archive=args.archive,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            seed=args.seed,
        )
        data_stage.run(params=data_params, out=root / "data")
        train = load_split(root / "data", "train")
        forget_ids = [format_id(int(i)) for i in (train.labels == args.forget_class).nonzero()]
        (root / "forget.txt").write_text("\n".join(forget_ids) + "\n")
        pretrain_params = PretrainParams(
            epochs=args.pretrain_epochs,
            max_images=None,
            num_workers=1,
            device="cpu",
            seed=args.seed,
        )
        started = time.perf_counter()
        pretrain.run(root / "data", params=pretrain_params, out=root / "model")
        original_seconds = time.perf_counter() - started
        update = {"device": "cpu", "seed": args.seed}
        if args.laf_epochs is not None:
            update["epochs"] = args.laf_epochs
        if args.laf_lr is not None:
            update["ue_lr"] = update["ra_lr"] = args.laf_lr
        params = UnlearnParams().model_copy(update=update)
        metrics = stage.run(
            root / "data", root / "model", root / "forget.txt", params=params, out=root / "out"
        )
    metrics["original_pretrain_seconds"] = original_seconds
    metrics["args"] = {k: str(v) for k, v in vars(args).items()}
    print(
        f"\nCIFAR-10 subset: {len(train)} train, forget class {args.forget_class} "
        f"({metrics['forget_count']} images); original pretrain {original_seconds:.0f} s"
    )
    print(
        f"MIA held-out accuracy on the original model: "
        f"{metrics['mia']['original_heldout_accuracy']:.3f} (trusted: {metrics['mia']['trusted']})"
    )
    print(
        "method     acc_rem  acc_fgt  test_rem test_fgt attack   seconds  "
        "Δfgt    Δtest_rem Δattack  t/retrain"
    )
    gaps = metrics["gaps_to_retrain"]
    for name, row in metrics["methods"].items():
        attack = row.get("attack_forget_member_rate")
        if attack is None:
            attack = row.get("attack_forget_member_rate_untrusted")
        gap = gaps.get(name, {})
        print(
            f"{name:9s} {_fmt(row['acc_remaining'])}  {_fmt(row['acc_forget'])}  "
            f"{_fmt(row['acc_test_remaining'])}  {_fmt(row['acc_test_forget'])}  {_fmt(attack)} "
            f"{row['seconds']:8.1f}  {_fmt(gap.get('acc_forget'))}  "
            f"{_fmt(gap.get('acc_test_remaining'))}  {_fmt(gap.get('attack_forget_member_rate'))} "
            f" {_fmt(gap.get('time_ratio'))}"
        )
    print(
        "paper (ResNet-18, full CIFAR-10): retrain 0.851 test-remaining / 0.000 forget; "
        "LAF 0.805 / 0.020, attack 0.476"
    )
    print(f"LAF active units: {metrics['laf']['active_units']}")
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
