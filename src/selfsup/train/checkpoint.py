"""Atomic checkpoints that resume to the same result, and their copy in a store.

A checkpoint is written to a temporary file and renamed, so a run killed mid-write keeps the
previous one. It is read with ``torch.load(weights_only=True)``: only tensors and plain
containers, never code. A :class:`Mirror` keeps a copy in a store (``s3://…`` or a folder) under
the run key, with its sha256, so a retried pipeline task — a fresh pod with an empty disk —
resumes from the last epoch instead of from zero.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from selfsup.errors import IntegrityError
from selfsup.store import atomic_write_bytes
from selfsup.store.tensors import load_tensors

LAST = "last.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` to ``directory/last.pt``."""
    import torch  # here: the pipeline compiler reads MIRROR_ENV without importing torch

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
    state: dict[str, Any] = load_tensors(path)
    return state


MIRROR_ENV = "SELFSUP_CHECKPOINTS"


class Mirror:
    """The checkpoints of every run key under the store at ``uri``: one object ``<key>/last.pt``
    per run, its sha256 (hex) and a newline before the checkpoint's bytes — one write, so a
    reader never sees a checkpoint with another one's digest."""

    def __init__(self, uri: str) -> None:
        from selfsup.store.open import open_backend

        self.uri, self.backend = uri, open_backend(uri)

    def pull(self, key: str, directory: Path) -> bool:
        """Copy run ``key``'s checkpoint into ``directory`` (verified); False when there is none."""
        name = f"{key}/{LAST}"
        if not self.backend.exists(name):
            return False
        digest, _, data = self.backend.get_bytes(name).partition(b"\n")
        if hashlib.sha256(data).hexdigest().encode() != digest:
            raise IntegrityError(f"checkpoint {self.uri}/{name} does not match its sha256")
        atomic_write_bytes(Path(directory) / LAST, data)
        return True

    def push(self, key: str, path: Path) -> None:
        """Store ``path`` as run ``key``'s checkpoint."""
        data = Path(path).read_bytes()
        self.backend.put_bytes(
            f"{key}/{LAST}", hashlib.sha256(data).hexdigest().encode() + b"\n" + data
        )
