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


def view_size(epoch: int, epochs: int, full: int, ramp: ProgressiveResize | None) -> int:
    """The side (px) of epoch ``epoch``'s views (0-based, of ``epochs``) of ``full``-px images.

    With progress ``p = epoch / epochs``: ``min_size`` while ``p < hold``, then linear up to
    ``full`` over the next ``ramp`` share (rounded down to ``multiple``, never below
    ``min_size``), then ``full``; the last epoch is always ``full``. A function of the epoch
    alone, so a resumed run makes the same views.
    """
    if ramp is None or epoch >= epochs - 1:
        return full
    low = min(ramp.min_size, full)
    progress = epoch / epochs
    if progress < ramp.hold:
        return low
    if progress >= ramp.hold + ramp.ramp:
        return full
    size = low + (progress - ramp.hold) / ramp.ramp * (full - low)
    return min(full, max(low, int(size) // ramp.multiple * ramp.multiple))
