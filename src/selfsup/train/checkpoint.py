"""Atomic checkpoints that resume to the same result.

A checkpoint is written to a temporary file and renamed, so a run killed mid-write keeps the
previous one. It is read with ``torch.load(weights_only=True)``: only tensors and plain
containers, never code.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from selfsup.store import atomic_write_bytes

LAST = "last.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` to ``directory/last.pt``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(directory) / LAST
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The last checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / LAST
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=True, map_location="cpu")
    return state
