"""The one way selfsup reads a tensor file: ``torch.load(weights_only=True)`` on the CPU.

``weights_only`` unpickles tensors and plain containers only, so a malicious pickle never runs;
it is refused with an UnpicklingError. That refusal, and a truncated or non-torch file, are
bad input rather than bugs: they end as one :class:`~selfsup.errors.IntegrityError` line that
names the file, not a traceback.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from selfsup.errors import IntegrityError


def load_tensors(path: Path) -> Any:
    """The tensors (or dict/list of tensors and plain values) saved in ``path``."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise IntegrityError(f"{path} is missing") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IntegrityError(
            f"{path} was refused: not a plain tensor file (code or objects other than tensors "
            f"are never unpickled), or it is corrupt: {first}"
        ) from None
