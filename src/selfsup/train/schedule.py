"""Schedules of a run: the learning rate per step, the view size per epoch."""

from __future__ import annotations

import math

from selfsup.config import ProgressiveResize


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear 1/w … 1 over the warm-up, then a
    cosine from 1 down to 0 at ``total_steps``."""
    if total_steps <= 0:
        raise ValueError("total_steps must be positive")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def view_size(epoch: int, full: int, ramp: ProgressiveResize | None) -> int:
    """The side (px) of epoch ``epoch``'s views of ``full``-px images: ``min_size`` up to
    ``ramp_start``, ``full`` from ``ramp_end``, linear between (rounded down to ``multiple``,
    never below ``min_size``). A function of the epoch alone, so a resumed run makes the same."""
    if ramp is None or epoch >= ramp.ramp_end:
        return full
    low = min(ramp.min_size, full)
    if epoch <= ramp.ramp_start:
        return low
    fraction = (epoch - ramp.ramp_start) / (ramp.ramp_end - ramp.ramp_start)
    size = low + fraction * (full - low)
    return min(full, max(low, int(size) // ramp.multiple * ramp.multiple))
