"""One table for issue #8: each compression method × density — packed size, CPU latency at
batch 1 and 256, kNN / linear / RankMe / ECE — next to the dense encoder, in one run.

Input: a pretrained encoder (``selfsup pretrain``) and a prepared labeled dataset (``selfsup
data prepare``). Fine-tuning uses only the train images (labels are read by the evaluation
alone, via ``selfsup.evaluate.stage.evaluate_encoder``: kNN k=200, linear probe, RankMe, ECE).
``ssvi+int8`` quantizes the SSVI model of the same density (no second fine-tune). Latency is the
median of eager PyTorch forward passes with ``torch.set_num_threads(--threads)``; pruned float
models run on dense kernels (unstructured sparsity does not speed them up). Sizes are the
``weights.packed`` bytes (values + bitmask indices + metadata, ``selfsup.compress.size``).

    OMP_NUM_THREADS=1 python bench/compress_table.py --model artifacts/bench/encoder \
        --data artifacts/bench/data [--steps 150] [--densities 0.5 0.2 0.1 0.05] [--out FILE]

Measured: 7-8 minutes on the shared 2-core machine with the defaults (10k train / 2k test images,
a width-32 ConvNet, 150 fine-tuning steps of batch 128 per pruned model; BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.compress.distill import distill_set
from selfsup.compress.quantize import quantize_int8
from selfsup.compress.size import pack
from selfsup.compress.stage import compress_encoder
from selfsup.compress.targets import weight_density
from selfsup.config import CompressParams, EvaluateParams
from selfsup.data.shards import load_split
from selfsup.evaluate.stage import evaluate_encoder
from selfsup.models.artifact import load_encoder


@torch.inference_mode()
def latency_ms(model: nn.Module, batch: int, repeats: int) -> float:
    """Median wall milliseconds of one forward pass over ``batch`` random images (eval mode:
    in train mode BatchNorm would also overwrite its running statistics with these images)."""
    model.eval()
    images = torch.rand(batch, 3, 32, 32)
    model(images)  # warm-up (packing, allocator)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(images)
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def row(name: str, density: float, model: nn.Module, context: dict[str, Any]) -> dict[str, Any]:
    """Size, latency and the evaluation metrics of one compressed (or the dense) encoder."""
    train, test, params, dense_bytes = (
        context["train"],
        context["test"],
        context["evaluate"],
        context["dense_bytes"],
    )
    size = len(pack(model.state_dict()))
    result = evaluate_encoder(
        model,
        train,
        test,
        params,
        labeled=True,
        num_classes=10,
        device=torch.device("cpu"),
    )
    assert result.knn_top1 is not None and result.linear_top1 is not None
    assert result.calibration is not None
    # evaluate_encoder leaves the model in train mode (its device wrapper is created in train
    # mode and embed() restores that): back to eval before timing or quantizing it.
    model.eval()
    dense_test = context.setdefault("dense_test", result.test_features)
    fidelity = float(F.cosine_similarity(result.test_features, dense_test, dim=1).mean())
    out = {
        "method": name,
        "density": density,
        "bytes": size,
        "ratio": dense_bytes / size,
        "ms_batch1": latency_ms(model, 1, context["repeats1"]),
        "ms_batch256": latency_ms(model, 256, context["repeats256"]),
        "knn_top1": result.knn_top1,
        "linear_top1": result.linear_top1,
        "rankme": result.rankme.value,
        "ece": result.calibration.ece,
        "fidelity": fidelity,
    }
    print(json.dumps(out), flush=True)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    dense = rows[0]
    lines = [
        "| method | density | bytes | × smaller | ms b=1 | ms b=256 | kNN (Δ pts) | linear (Δ pts)"
        " | RankMe | ECE | cos to dense |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['density']:.3f} | {r['bytes']:,} | {r['ratio']:.1f} "
            f"| {r['ms_batch1']:.2f} | {r['ms_batch256']:.0f} "
            f"| {r['knn_top1']:.4f} ({100 * (r['knn_top1'] - dense['knn_top1']):+.1f}) "
            f"| {r['linear_top1']:.4f} ({100 * (r['linear_top1'] - dense['linear_top1']):+.1f}) "
            f"| {r['rankme']:.1f} | {r['ece']:.3f} | {r['fidelity']:.4f} |"
        )
    return "\n".join(lines)


def interleaved_speedup(fp32: nn.Module, int8: nn.Module, rounds: int) -> dict[str, float]:
    """fp32 / int8 latency at batch 256, the two alternating round by round (contention on a
    shared machine then hits both alike); medians over the rounds."""
    fp32_ms, int8_ms = [], []
    for _ in range(rounds):
        fp32_ms.append(latency_ms(fp32, 256, 3))
        int8_ms.append(latency_ms(int8, 256, 3))
    ratios = [a / b for a, b in zip(fp32_ms, int8_ms, strict=True)]
    return {
        "fp32_ms": statistics.median(fp32_ms),
        "int8_ms": statistics.median(int8_ms),
        "speedup_median": statistics.median(ratios),
        "speedup_min": min(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="selfsup pretrain output")
    parser.add_argument("--data", type=Path, required=True, help="prepared labeled dataset")
    parser.add_argument("--densities", type=float, nargs="+", default=[0.5, 0.2, 0.1, 0.05])
    parser.add_argument("--methods", nargs="+", default=["magnitude", "ssvi"])
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps per model")
    parser.add_argument("--max-images", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats1", type=int, default=50)
    parser.add_argument("--repeats256", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved fp32/int8 rounds")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    teacher, _ = load_encoder(args.model)
    train = load_split(args.data, "train")
    test = load_split(args.data, "test")
    base = CompressParams(steps=args.steps, max_images=args.max_images)
    images = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))]
    data = distill_set(teacher, images[: args.max_images])
    dense_bytes = len(pack(teacher.state_dict()))
    context = {
        "train": train,
        "test": test,
        "evaluate": EvaluateParams(),
        "dense_bytes": dense_bytes,
        "repeats1": args.repeats1,
        "repeats256": args.repeats256,
    }
    rows = [row("dense fp32", 1.0, teacher, context)]
    calibration = data.images[: base.calibration_images]
    dense_int8 = quantize_int8(teacher, calibration)
    rows.append(row("int8", 1.0, dense_int8, context))
    for method in args.methods:
        for density in args.densities:
            params = base.model_copy(update={"method": method, "density": density})
            model, _ = compress_encoder(teacher, data, params)
            rows.append(row(method, weight_density(model), model, context))
            if method == "ssvi":
                quantized = quantize_int8(model, calibration)
                rows.append(row("ssvi+int8", weight_density(model), quantized, context))
    speedup = interleaved_speedup(teacher, dense_int8, args.rounds)
    print()
    print(table(rows))
    print(f"\nint8 vs fp32 at batch 256, {args.rounds} interleaved rounds: {json.dumps(speedup)}")
    wall = time.perf_counter() - started
    print(f"\nwall time {wall / 60:.1f} min, threads {args.threads}, steps {args.steps}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {"rows": rows, "speedup": speedup, "wall_s": wall, "args": vars(args)},
                default=str,
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
