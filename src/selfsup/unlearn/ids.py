"""Sample ids: how a deletion request names the training samples to forget.

A forget file holds one id per line; blank lines and ``#`` comments are ignored (so an id cannot
contain ``#``); a repeated id counts once. Each line is one of:

* a **row id** ``train/<index>``: the 0-based row of the sample in the ``train`` split, counting
  through the shards in order (``shard-00000.pt`` first) — exactly the row order
  :func:`~selfsup.data.shards.load_split` returns;
* a **source id**: the sample's name in its source, as the dataset's ``ids.json`` keeps it
  (:mod:`selfsup.data.shards`): an archive member ``train/cat/0001.jpg`` (with or without the
  archive's top-level folder), a file's path inside ``data.folder``;
* a **user id** from the folder's ``data.ids_csv``: every train row of that user.

An index or a name only means something for one dataset version, so the deletion request records
the dataset's ``content_hash`` (which covers ``ids.json``) next to the ids as requested and the
rows they resolved to. Only ``train`` samples can be forgotten: the model never trained on the
other splits, so ``test/<index>`` and names of test samples are refused; a user id with test rows
as well selects its train rows and the record counts the test rows left alone. Every id that does
not resolve is listed in one error: a request is served whole or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from selfsup.config import read_config_text
from selfsup.data.shards import ROW_ID, SampleIds
from selfsup.errors import ConfigError

SPLIT = "train"


def format_id(index: int) -> str:
    """The sample id of row ``index`` of the train split."""
    return f"{SPLIT}/{index}"


@dataclass(frozen=True)
class Request:
    """A resolved deletion request: the train rows, and the ids as requested with their rows."""

    rows: torch.Tensor  # sorted unique train-row indices (int64)
    requested: list[str]  # the ids as requested: unique, in the file's order
    resolved: dict[str, list[int]]  # each requested id → its train rows (sorted)
    test_rows_kept: dict[str, int] = field(default_factory=dict)  # user id → its test rows

    @property
    def row_ids(self) -> list[str]:
        """The rows as row ids ``train/<index>``, sorted by index."""
        return [format_id(int(i)) for i in self.rows]


def request_lines(lines: Sequence[str]) -> list[str]:
    """The ids of a forget file's lines: comments and blanks dropped, unique, in order."""
    seen: dict[str, None] = {}
    for raw in lines:
        text = raw.split("#", 1)[0].strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _row(text: str) -> tuple[str, int] | None:
    """``(split, index)`` of a row id in canonical form (no leading zeros), else None."""
    if not ROW_ID.match(text):
        return None
    split, digits = text.split("/", 1)
    return (split, int(digits)) if digits == str(int(digits)) else None


def _index(text: str) -> int:
    return int(text.split("/", 1)[1])


class _Names:
    """Source ids and user ids of a dataset → ``(split, row)`` lists."""

    def __init__(self, ids: SampleIds) -> None:
        self.prefix = ids.prefix
        self.table: dict[str, list[tuple[str, int]]] = {}
        for split, names in ids.source.items():
            for row, name in enumerate(names):
                self.table.setdefault(name, []).append((split, row))
        for split, users in (ids.users or {}).items():
            for row, user in enumerate(users):
                if user is not None:
                    self.table.setdefault(user, []).append((split, row))

    def lookup(self, text: str) -> list[tuple[str, int]]:
        found = self.table.get(text)
        if found is None and self.prefix and text.startswith(self.prefix):
            found = self.table.get(text[len(self.prefix) :])
        return found or []


_TEST_ONLY = "a test sample: only train samples can be forgotten"


def resolve(
    lines: Sequence[str],
    num_train: int,
    sample_ids: SampleIds | None = None,
    where: str = "forget list",
) -> Request:
    """Resolve a forget file's lines against a dataset with ``num_train`` train rows and its
    ``sample_ids`` (None: row ids only); a clear ConfigError for anything that does not resolve.

    Every unresolved id is listed in the error with the reason, so a request is rejected as a
    whole rather than served in part.
    """
    names = _Names(sample_ids) if sample_ids is not None else None
    requested = request_lines(lines)
    resolved: dict[str, list[int]] = {}
    kept: dict[str, int] = {}
    bad: list[str] = []
    for text in requested:
        row = _row(text)
        if row is not None:
            split, index = row
            if split != SPLIT:
                bad.append(f"{text} ({_TEST_ONLY})")
            elif index >= num_train:
                bad.append(f"{text} (past the {num_train} train rows)")
            else:
                resolved[text] = [index]
            continue
        if names is None:  # the hint after the list says why
            bad.append(text)
            continue
        found = names.lookup(text)
        train_rows = sorted(r for s, r in found if s == SPLIT)
        if not found:
            bad.append(f"{text} (no such source id or user id in the dataset)")
        elif not train_rows:
            bad.append(f"{text} ({_TEST_ONLY})")
        else:
            resolved[text] = train_rows
            if len(train_rows) < len(found):
                kept[text] = len(found) - len(train_rows)
    if bad:
        shown = ", ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        names_hint = (
            ", or a source id / user id the dataset keeps (e.g. "
            f"{next(iter(names.table), 'train/cat/0001.jpg')!r})"
            if names is not None
            else "; this dataset keeps no source ids (synthetic, or prepared before they were "
            "recorded: re-run `selfsup data prepare`), so samples are named by row only"
        )
        raise ConfigError(
            f"{where}: {len(bad)} unknown sample id(s): {shown}; a sample id is "
            f"'train/<index>' with 0 <= index < {num_train} (the row in the train split)"
            f"{names_hint}"
        )
    rows = sorted({r for found in resolved.values() for r in found})
    if not rows:
        raise ConfigError(f"{where} is empty: name at least one sample id ('train/<index>')")
    if len(rows) == num_train:
        raise ConfigError(f"{where} names every training sample: nothing would remain")
    return Request(torch.tensor(rows, dtype=torch.long), requested, resolved, kept)


def parse_ids(lines: list[str], num_train: int, where: str = "forget list") -> torch.Tensor:
    """Sorted unique train-row indices named by row ids ``lines`` (:func:`resolve` without
    source ids)."""
    return resolve(lines, num_train, None, where).rows


def read_request(path: Path, num_train: int, sample_ids: SampleIds | None) -> Request:
    """:func:`resolve` of a forget file."""
    text = read_config_text(Path(path), "forget list")
    return resolve(text.splitlines(), num_train, sample_ids, where=str(path))


def read_ids(path: Path, num_train: int) -> torch.Tensor:
    """The train rows of a forget file of row ids."""
    return read_request(path, num_train, None).rows


def request_ids(path: Path) -> list[str]:
    """The ids of a forget file, checked for form only: what a client submits before the
    dataset — and so the valid indices and names — is at hand. Row ids come first, sorted by
    index; names follow in the file's order. ``test/<index>`` and malformed row ids are refused."""
    text = read_config_text(Path(path), "forget list")
    tokens = request_lines(text.splitlines())
    # a name never reads as a row id (the data stage refuses such user ids), so these are errors
    bad = [t for t in tokens if ROW_ID.match(t) and _row(t) != (SPLIT, _index(t))]
    if bad:
        shown = ", ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        raise ConfigError(
            f"{path}: {len(bad)} unknown sample id(s): {shown}; a row id is 'train/<index>' "
            "(only train samples can be forgotten; no leading zeros)"
        )
    if not tokens:
        raise ConfigError(f"{path} is empty: name at least one sample id ('train/<index>')")
    rows = sorted((t for t in tokens if _row(t) is not None), key=_index)
    return rows + [t for t in tokens if _row(t) is None]
