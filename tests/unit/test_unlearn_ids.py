"""Sample ids of a deletion request: what is accepted, and clear errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from selfsup.errors import ConfigError
from selfsup.unlearn.ids import format_id, parse_ids, read_ids


def test_ids_are_train_rows_sorted_and_deduplicated() -> None:
    lines = ["train/7", "", "# a comment", "train/2  # trailing comment", "train/7"]
    assert parse_ids(lines, num_train=10).tolist() == [2, 7]
    assert format_id(7) == "train/7"


@pytest.mark.parametrize("bad", ["train/10", "test/1", "7", "train/-1", "train/01", "train/x"])
def test_unknown_ids_are_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="unknown sample id") as info:
        parse_ids(["train/1", bad], num_train=10)
    assert bad in str(info.value) and "train/<index>" in str(info.value)


def test_empty_list_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "forget.txt"
    path.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_ids(path, num_train=10)


def test_missing_file_and_forgetting_everything_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_ids(tmp_path / "nope.txt", num_train=3)
    with pytest.raises(ConfigError, match="nothing would remain"):
        parse_ids([format_id(i) for i in range(3)], num_train=3)


def test_read_ids_round_trips_format_id(tmp_path: Path) -> None:
    path = tmp_path / "forget.txt"
    path.write_text("\n".join(format_id(i) for i in (5, 0, 3)) + "\n")
    assert torch.equal(read_ids(path, num_train=6), torch.tensor([0, 3, 5]))


def test_a_forget_file_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    from selfsup.unlearn.ids import request_ids

    path = tmp_path / "forget.txt"
    path.write_bytes(b"train/1\n\xfe\xfftrain/2\n")
    with pytest.raises(ConfigError, match=r"forget list .*forget\.txt is not UTF-8 text"):
        request_ids(path)
