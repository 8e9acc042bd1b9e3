"""Forward + backward time of selfsup's ``nt_xent`` vs lightly's ``NTXentLoss`` on the CPU.

Same inputs (two views of N embeddings of width D, requiring grad), same temperature; the two
losses alternate round by round. Prints the median milliseconds of each per N and the ratio
lightly / selfsup (> 1 means selfsup is faster), and checks that both give the same loss.

    python bench/nt_xent_speed.py [--sizes 256 512 1024] [--dim 128] [--repeats 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from lightly.loss import NTXentLoss

from selfsup.losses import nt_xent


def _time_ms(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    z1: torch.Tensor,
    z2: torch.Tensor,
    repeats: int,
) -> float:
    """Median ms of forward + backward over ``repeats`` calls (after one warm-up)."""
    times = []
    for step in range(repeats + 1):
        a, b = z1.detach().requires_grad_(), z2.detach().requires_grad_()
        started = time.perf_counter()
        loss_fn(a, b).backward()  # type: ignore[no-untyped-call]
        if step:
            times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    theirs = NTXentLoss(temperature=args.temperature)

    def ours(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return nt_xent(a, b, args.temperature)

    rows = []
    for n in args.sizes:
        gen = torch.Generator().manual_seed(n)
        z1, z2 = torch.randn(n, args.dim, generator=gen), torch.randn(n, args.dim, generator=gen)
        same = abs(float(ours(z1, z2)) - float(theirs(z1, z2))) < 1e-4
        ours_ms, theirs_ms = [], []
        for _ in range(args.rounds):
            ours_ms.append(_time_ms(ours, z1, z2, args.repeats))
            theirs_ms.append(_time_ms(theirs, z1, z2, args.repeats))
        rows.append({
            "n": n, "dim": args.dim, "same_loss": same,
            "selfsup_ms": round(statistics.median(ours_ms), 3),
            "lightly_ms": round(statistics.median(theirs_ms), 3),
            "ratio_lightly_over_selfsup_per_round": [
                round(b / a, 3) for a, b in zip(ours_ms, theirs_ms, strict=True)
            ],
        })  # fmt: skip
    print(json.dumps({"threads": torch.get_num_threads(), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
