"""Sample ids: how a deletion request names the training samples to forget.

The prepared dataset format (:mod:`selfsup.data.shards`) stores no per-sample identifier; a sample
is fixed by its position. A **sample id** is therefore ``train/<index>``: the 0-based row of the
sample in the ``train`` split, counting through the shards in order (``shard-00000.pt`` first) —
exactly the row order :func:`~selfsup.data.shards.load_split` returns. An index only means
something for one dataset version, so the deletion request records the dataset's
``content_hash`` next to the ids (a re-prepared dataset with other content is another version).
Only ``train`` samples can be forgotten: the model never trained on the other splits.

A forget file holds one id per line; blank lines and ``#`` comments are ignored; a repeated id
counts once.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from selfsup.config import read_config_text
from selfsup.errors import ConfigError

SPLIT = "train"
_ID = re.compile(r"^train/(0|[1-9][0-9]*)$")


def format_id(index: int) -> str:
    """The sample id of row ``index`` of the train split."""
    return f"{SPLIT}/{index}"


def parse_ids(lines: list[str], num_train: int, where: str = "forget list") -> torch.Tensor:
    """Sorted unique train-row indices named by ``lines``; a clear ConfigError for bad input.

    Unknown ids (malformed, another split, or an index ≥ ``num_train``) are all listed in the
    error, so a request is rejected as a whole rather than served in part.
    """
    wanted: set[int] = set()
    bad: list[str] = []
    for raw in lines:
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        match = _ID.match(text)
        if match is None or int(match.group(1)) >= num_train:
            bad.append(text)
        else:
            wanted.add(int(match.group(1)))
    if bad:
        shown = ", ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        raise ConfigError(
            f"{where}: {len(bad)} unknown sample id(s): {shown}; a sample id is "
            f"'train/<index>' with 0 <= index < {num_train} (the row in the train split)"
        )
    if not wanted:
        raise ConfigError(f"{where} is empty: name at least one sample id ('train/<index>')")
    if len(wanted) == num_train:
        raise ConfigError(f"{where} names every training sample: nothing would remain")
    return torch.tensor(sorted(wanted), dtype=torch.long)


def read_ids(path: Path, num_train: int) -> torch.Tensor:
    """:func:`parse_ids` of a forget file."""
    text = read_config_text(Path(path), "forget list")
    return parse_ids(text.splitlines(), num_train, where=str(path))


def request_ids(path: Path) -> list[str]:
    """The ids of a forget file, checked for form only (``train/<index>``, at least one): what a
    client submits before the dataset — and so the range of valid indices — is at hand."""
    import sys

    text = read_config_text(Path(path), "forget list")
    rows = parse_ids(text.splitlines(), sys.maxsize, where=str(path))
    return [format_id(int(i)) for i in rows]
