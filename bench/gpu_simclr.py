"""SimCLR ResNet-18 on CIFAR-10 on one GPU: selfsup vs lightly's reference loop, then time to kNN.

1. images/s of selfsup's ``pretrain`` stage with the ``gpu`` profile (bf16 autocast,
   channels-last, torch.compile, uint8 batches pinned and copied asynchronously, views made on
   the GPU by kornia), measured on its second epoch (the first pays compilation);
2. images/s of lightly's reference loop (its ``examples/pytorch/simclr.py``: ``SimCLRTransform``
   on PIL images in DataLoader workers, fp32, one forward per view, ``NTXentLoss``) with the SAME
   model (selfsup's CIFAR ResNet-18 + projection head) and batch;
3. time to kNN ≥ ``--knn-target`` on the CIFAR-10 test split: the ``gpu`` profile trained for as
   many epochs as the measured throughput fits in ``--budget-s`` (cosine schedule over that run),
   then a kNN (k=200, τ=0.1) of the test split on the train split's features.

    python bench/gpu_simclr.py [--data DIR] [--batch-size 512] [--steps 40] [--budget-s 300]
    python bench/gpu_simclr.py --smoke     # CPU, tiny synthetic data: checks that it runs

``--data``: a prepared CIFAR-10 dataset (``selfsup data prepare``); default: prepared here from
``$SELFSUP_CIFAR10_ARCHIVE``. With the defaults the whole script should fit in 10 minutes of one
H100 (estimate, not yet run on one): ~1 min preparing, ~2 min throughput (two compilations
included), ``--budget-s`` (5 min) training plus its own compilation, ~20 s kNN. The epochs are
sized from the warm rate, so the training run overshoots the budget by its compile time. Prints
a table and writes ``--out`` (JSON). Never run by CI except ``--smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import to_pil_image

from selfsup.config import CIFAR10_ARCHIVE_ENV, DataParams, PretrainParams, profile_params
from selfsup.data import stage as data_stage
from selfsup.data.shards import load_split
from selfsup.evaluate.knn import knn_classify, top1_accuracy
from selfsup.evaluate.stage import _OnDevice
from selfsup.models import ProjectionHead, build_encoder
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.train import accel
from selfsup.train import stage as pretrain


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def selfsup_images_per_second(data: Path, params: PretrainParams, steps: int, work: Path) -> float:
    """The pretrain stage's own images/s on its second (warm) epoch of ``steps`` batches."""
    run = params.model_copy(
        update={"epochs": 2, "warmup_epochs": 0, "max_images": steps * params.batch_size}
    )
    metrics = pretrain.run(
        data, params=run, out=work / "throughput-model", checkpoints=work / "ckpt"
    )
    return float(metrics["images_per_second"][-1])


class _PilViews(Dataset[Any]):
    """lightly's input path: a PIL image per sample through ``SimCLRTransform`` (two views)."""

    def __init__(self, images: torch.Tensor, transform: Any) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:
        return self.transform(to_pil_image(self.images[index]))


def lightly_images_per_second(
    images: torch.Tensor, params: PretrainParams, steps: int, warmup: int, device: torch.device
) -> float:
    """lightly's reference SimCLR loop, same model and batch; images/s after ``warmup`` steps."""
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    transform = SimCLRTransform(
        input_size=int(images.shape[-1]),
        cj_strength=params.augment.jitter_strength,
        min_scale=params.augment.crop_scale_min,
        gaussian_blur=params.augment.blur_p,
    )
    torch.manual_seed(params.seed)
    encoder = build_encoder(params)
    model = nn.Sequential(
        encoder, ProjectionHead(encoder.out_dim, params.projector_hidden, params.projector_out)
    ).to(device)
    criterion = NTXentLoss(temperature=params.temperature)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    loader = DataLoader(
        _PilViews(images[: (steps + warmup) * params.batch_size], transform),
        batch_size=params.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=params.num_workers,
        pin_memory=device.type == "cuda",
    )
    model.train()
    started, seen = 0.0, 0
    for step, views in enumerate(loader):  # views: [first view batch, second view batch]
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        x0, x1 = views[0].to(device), views[1].to(device)
        loss = criterion(model(x0), model(x1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= warmup:
            seen += len(x0)
    _sync(device)
    return seen / (time.perf_counter() - started)


def time_to_knn(
    data: Path, params: PretrainParams, images_per_second: float, budget_s: float, work: Path
) -> dict[str, Any]:
    """Train for the epochs that ``budget_s`` allows at the measured rate; kNN on the test split."""
    train, test = load_split(data, "train"), load_split(data, "test")
    epochs = max(1, int(budget_s * images_per_second / len(train.images)))
    run = params.model_copy(
        update={
            "epochs": epochs,
            "warmup_epochs": min(params.warmup_epochs, epochs / 10),
            "max_images": None,
        }
    )
    started = time.perf_counter()
    pretrain.run(data, params=run, out=work / "knn-model", checkpoints=work / "ckpt")
    train_s = time.perf_counter() - started
    encoder, _ = load_encoder(work / "knn-model")
    device = accel.resolve_device(params.device)
    runner = _OnDevice(encoder, device)
    bank, queries = embed(runner, train.images), embed(runner, test.images)
    knn = knn_classify(bank, train.labels, queries, k=200, temperature=0.1)
    return {
        "epochs": epochs,
        "train_seconds": train_s,
        "seconds_to_result": time.perf_counter() - started,
        "knn_top1": top1_accuracy(knn.predictions, test.labels),
    }


def _dataset(args: argparse.Namespace, work: Path) -> Path:
    if args.data is not None:
        return Path(args.data)
    if args.smoke:
        source = DataParams(source="synthetic", synthetic_train=96, synthetic_test=32)
    else:
        archive = os.environ.get(CIFAR10_ARCHIVE_ENV)
        if not archive:
            raise SystemExit(f"give --data or set ${CIFAR10_ARCHIVE_ENV}")
        source = DataParams(source="cifar10-archive", archive=archive)
    data_stage.run(params=source, out=work / "data")
    return work / "data"


def _params(args: argparse.Namespace) -> PretrainParams:
    gpu = profile_params("gpu").pretrain
    update: dict[str, Any] = {"batch_size": args.batch_size, "num_workers": args.workers}
    if args.smoke:  # a CPU: a small ConvNet, batches of 16, views in-process
        update |= {"encoder": "convnet", "convnet_width": 8, "batch_size": 16, "num_workers": 0}
    return gpu.model_copy(update=update)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared CIFAR-10 dataset directory")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=12, help="DataLoader workers (both loops)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per loop")
    parser.add_argument("--budget-s", type=float, default=300.0, help="training time for kNN")
    parser.add_argument("--knn-target", type=float, default=0.84)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny data and sizes")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.budget_s = 2, 2.0

    params = _params(args)
    device = accel.resolve_device(params.device)
    with tempfile.TemporaryDirectory(prefix="gpu-simclr-") as tmp:
        work = Path(tmp)
        data = _dataset(args, work)
        ours = selfsup_images_per_second(data, params, args.steps, work)
        images = load_split(data, "train").images
        theirs = lightly_images_per_second(images, params, args.steps, warmup=3, device=device)
        knn = time_to_knn(data, params, ours, args.budget_s, work)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "encoder": params.encoder,
        "batch_size": params.batch_size,
        "selfsup_images_per_second": ours,
        "lightly_images_per_second": theirs,
        "speedup": ours / theirs,
        **knn,
        "knn_target": args.knn_target,
        "reached": knn["knn_top1"] >= args.knn_target,
        "smoke": args.smoke,
    }
    print(f"| device | {result['device']} | encoder {params.encoder}, batch {params.batch_size} |")
    print("| what | value |\n|---|---|")
    print(f"| selfsup images/s per GPU | {ours:.0f} |")
    print(f"| lightly reference loop images/s | {theirs:.0f} |")
    print(f"| speed-up | {ours / theirs:.2f}x |")
    print(
        f"| kNN top-1 after {knn['epochs']} epochs ({knn['train_seconds']:.0f} s training, "
        f"{knn['seconds_to_result']:.0f} s with eval) | {knn['knn_top1']:.4f} "
        f"({'reached' if result['reached'] else 'below'} {args.knn_target}) |"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
