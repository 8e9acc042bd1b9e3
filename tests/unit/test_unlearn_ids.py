"""Sample ids of a deletion request: what is accepted, and clear errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from selfsup.data.shards import SampleIds
from selfsup.errors import ConfigError
from selfsup.unlearn.ids import format_id, parse_ids, read_ids, request_ids, resolve


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
    path = tmp_path / "forget.txt"
    path.write_bytes(b"train/1\n\xfe\xfftrain/2\n")
    with pytest.raises(ConfigError, match=r"forget list .*forget\.txt is not UTF-8 text"):
        request_ids(path)


# ----------------------------------------------------------------------------------------------
# names: source ids and user ids

IDS = SampleIds(
    source={
        "train": [f"train/{k}/{i}.jpg" for i, k in enumerate(["cat", "dog", "cat", "dog", "ox"])],
        "test": ["test/cat/0.jpg", "test/dog/1.jpg"],
    },
    users={"train": ["ann", None, "ann", "bo", None], "test": ["ann", "cy"]},
    prefix="cifar/",
)


def test_names_resolve_to_their_rows_and_a_user_to_all_of_theirs() -> None:
    lines = ["train/dog/3.jpg", "cifar/train/dog/1.jpg  # with the archive's folder", "ann"]
    request = resolve([*lines, "train/1", "ann"], num_train=5, sample_ids=IDS)
    assert request.rows.tolist() == [0, 1, 2, 3] and request.row_ids[0] == "train/0"
    assert request.requested == ["train/dog/3.jpg", "cifar/train/dog/1.jpg", "ann", "train/1"]
    assert request.resolved == {
        "train/dog/3.jpg": [3],
        "cifar/train/dog/1.jpg": [1],
        "ann": [0, 2],
        "train/1": [1],
    }
    assert request.test_rows_kept == {"ann": 1}  # ann's test image was never trained on


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("test/cat/0.jpg", "a test sample"),
        ("cy", "a test sample"),  # a user with test images only
        ("test/1", "a test sample"),
        ("train/cat/9.jpg", "no such source id or user id"),
        ("train/5", "past the 5 train rows"),
    ],
)
def test_names_that_do_not_resolve_are_each_named(bad: str, why: str) -> None:
    with pytest.raises(ConfigError, match="unknown sample id") as info:
        resolve(["ann", bad, "dan"], num_train=5, sample_ids=IDS, where="req.txt")
    message = str(info.value)
    assert message.startswith("req.txt: 2 unknown") and f"{bad} ({why}" in message
    assert "dan (no such source id or user id" in message


def test_names_need_a_dataset_that_keeps_them() -> None:
    with pytest.raises(ConfigError, match="keeps no source ids") as info:
        resolve(["train/cat/0.jpg"], num_train=5, sample_ids=None)
    assert "re-run `selfsup data prepare`" in str(info.value)


def test_a_request_checked_before_the_dataset_is_at_hand(tmp_path: Path) -> None:
    path = tmp_path / "forget.txt"
    path.write_text("train/cat/0.jpg\ntrain/9\nann\ntrain/2\nann\n")
    assert request_ids(path) == ["train/2", "train/9", "train/cat/0.jpg", "ann"]
    for bad in ("test/3", "train/01"):
        path.write_text(f"ann\n{bad}\n")
        with pytest.raises(ConfigError, match=f"unknown sample id.*{bad}"):
            request_ids(path)
