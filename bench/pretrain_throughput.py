"""Images/s of one SimCLR training step: selfsup vs lightly, measured in the same run.

Both sides train the same encoder + projector with the same batch size, optimiser, number of
DataLoader workers and augmentation recipe (random resized crop, flip, colour jitter, grayscale):
  * selfsup: ``TwoViews`` + ``simclr_transform`` (torchvision v2 on uint8 tensors) + ``nt_xent``;
  * lightly (baseline): ``SimCLRTransform`` on PIL images + ``NTXentLoss`` in a plain loop.
A step covers making the views (in the DataLoader), forward, backward and the optimiser step.
Prints the median images/s of each over interleaved rounds and the per-round ratios
(selfsup / lightly; > 1 means selfsup is faster).

    python bench/pretrain_throughput.py [--steps 10] [--rounds 3] [--batch-size 256] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.transforms import SimCLRTransform
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from selfsup.config import AugmentParams, PretrainParams
from selfsup.data.augment import TwoViews, simclr_transform
from selfsup.data.augment_batched import BatchTwoViews
from selfsup.losses import nt_xent
from selfsup.models import ProjectionHead, build_encoder
from selfsup.train.loaders import as_unit_float, view_loader


class LightlyViews(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The baseline's data path: PIL images through lightly's SimCLRTransform."""

    def __init__(self, images: torch.Tensor, augment: AugmentParams) -> None:
        self.images = [TF.to_pil_image(image) for image in images]
        self.transform = SimCLRTransform(
            input_size=32,
            cj_prob=augment.jitter_p,
            cj_strength=augment.jitter_strength,
            min_scale=augment.crop_scale_min,
            random_gray_scale=augment.grayscale_p,
            gaussian_blur=augment.blur_p,
            hf_prob=augment.flip_p,
            normalize=None,
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = self.transform(self.images[index])
        return first, second


def _measure(
    loader: DataLoader[Any],
    to_float: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    params: PretrainParams,
    steps: int,
    warmup: int,
) -> float:
    torch.manual_seed(0)
    encoder = build_encoder(params)
    projector = ProjectionHead(encoder.out_dim, params.projector_hidden, params.projector_out)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *projector.parameters()], lr=1e-3)
    seen, started = 0, 0.0
    batches = iter(loader)
    for step in range(warmup + steps):
        if step == warmup:
            started, seen = time.perf_counter(), 0
        view1, view2 = next(batches)
        z1, z2 = projector(encoder(to_float(torch.cat([view1, view2])))).chunk(2)
        loss = loss_fn(z1, z2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        seen += len(view1)
    return seen / (time.perf_counter() - started)


def _views_per_second(dataset: Dataset[Any], n: int) -> float:
    """Pairs of views made per second by ``dataset[i]`` on one thread (no training)."""
    started = time.perf_counter()
    for index in range(n):
        dataset[index]
    return n / (time.perf_counter() - started)


def _selfsup_views_per_second(images: torch.Tensor, augment: AugmentParams) -> float:
    """Pairs of views per second of selfsup's configured backend (per image, or one batch)."""
    if augment.backend == "kornia":
        collate, batch = BatchTwoViews(32, augment), list(images)
        started = time.perf_counter()
        collate(batch)
        return len(batch) / (time.perf_counter() - started)
    return _views_per_second(TwoViews(images, simclr_transform(32, augment)), len(images))


def augment_only(images: torch.Tensor, augment: AugmentParams, rounds: int) -> dict[str, Any]:
    """View-making cost alone, both pipelines, interleaved rounds, one thread."""
    torch.set_num_threads(1)
    theirs = LightlyViews(images, augment)
    runs = [
        (_selfsup_views_per_second(images, augment), _views_per_second(theirs, len(images)))
        for _ in range(rounds)
    ]
    return {
        "mode": "augment-only",
        "backend": augment.backend,
        "images": len(images),
        "selfsup_ms_per_pair": [round(1e3 / a, 3) for a, _ in runs],
        "lightly_ms_per_pair": [round(1e3 / b, 3) for _, b in runs],
        "ratio_selfsup_over_lightly_per_round": [round(a / b, 3) for a, b in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--encoder", default="convnet", choices=["convnet", "resnet18_cifar"])
    parser.add_argument(
        "--backend",
        default="kornia",
        choices=["kornia", "torchvision"],
        help="selfsup's augmentation backend",
    )
    parser.add_argument(
        "--augment-only",
        action="store_true",
        help="time only the view making (one thread), no training step",
    )
    args = parser.parse_args()

    params = PretrainParams(
        encoder=args.encoder,
        batch_size=args.batch_size,
        augment=AugmentParams(backend=args.backend),
    )
    n_images = args.batch_size * (args.steps + args.warmup)
    images = torch.randint(
        0, 256, (n_images, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )

    if args.augment_only:
        print(json.dumps(augment_only(images[:300], params.augment, args.rounds), indent=2))
        return

    def loader(dataset: Dataset[Any]) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=args.workers,
            generator=torch.Generator().manual_seed(0),
        )

    lightly_loss = NTXentLoss(temperature=params.temperature)
    their_views = LightlyViews(images, params.augment)
    ours_runs: list[float] = []
    their_runs: list[float] = []
    # Interleaved rounds: a load change on the machine hits both sides, not just one.
    for _ in range(args.rounds):
        ours_runs.append(
            _measure(
                view_loader(images, params, epoch=0, device=torch.device("cpu")),
                as_unit_float,
                lambda a, b: nt_xent(a, b, params.temperature),
                params,
                args.steps,
                args.warmup,
            )
        )
        their_runs.append(
            _measure(
                loader(their_views), lambda x: x, lightly_loss, params, args.steps, args.warmup
            )
        )
    ratios = [a / b for a, b in zip(ours_runs, their_runs, strict=True)]
    ours, theirs = statistics.median(ours_runs), statistics.median(their_runs)
    result = {
        "encoder": args.encoder,
        "backend": args.backend,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "selfsup_images_per_s_median": round(ours, 1),
        "lightly_images_per_s_median": round(theirs, 1),
        "ratio_selfsup_over_lightly_per_round": [round(r, 3) for r in ratios],
        "ratio_selfsup_over_lightly_median": round(statistics.median(ratios), 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
