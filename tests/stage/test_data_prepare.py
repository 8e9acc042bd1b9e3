"""``selfsup data prepare`` end to end: written shards round-trip, manifest, atomic failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ArchiveBuilder

from selfsup.config import DataParams
from selfsup.data import sources, stage
from selfsup.data.shards import load_split, read_dataset_manifest
from selfsup.errors import DataError
from selfsup.store import sha256_file

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def siblings(path: Path) -> list[str]:
    """Everything in ``path``'s parent other than the inputs the test created."""
    return sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".tar.gz"))


def test_archive_round_trip_and_manifest(make_archive: ArchiveBuilder, tmp_path: Path) -> None:
    archive = make_archive(classes=3, train=5, test=3)
    params = DataParams(archive=str(archive), shard_size=4, train_per_class=4, seed=3)
    out = tmp_path / "dataset"
    metrics = stage.run(params=params, out=out)

    expected = sources.load_source(params)  # the same parameters build the same tensors
    for split, size in (("train", 12), ("test", 9)):
        loaded = load_split(out, split)
        assert len(loaded) == size
        assert torch.equal(loaded.images, expected.splits[split].images)
        assert torch.equal(loaded.labels, expected.splits[split].labels)

    manifest = read_dataset_manifest(out)  # verifies every file's sha256 too
    shards = sorted(str(p.relative_to(out)) for p in out.rglob("shard-*.pt"))
    assert len(shards) == 3 + 3  # 12 train images and 9 test images in shards of 4
    assert sorted(manifest["files"]) == shards
    for rel, digest in manifest["files"].items():
        assert sha256_file(out / rel) == digest
    assert manifest["source"] == "cifar10-archive"
    assert manifest["splits"] == {"train": 12, "test": 9}
    assert manifest["class_names"] == ["class0", "class1", "class2"]
    assert manifest["params"] == params.model_dump()
    assert manifest["archive"] == {"path": str(archive), "sha256": sha256_file(archive)}
    assert manifest["corrupt_images"]["skipped"] == 0

    assert metrics["images"] == {"train": 12, "test": 9}
    assert metrics["corrupt_skipped"] == 0 and metrics["seconds"] > 0
    assert metrics["images_per_second"] > 0
    json.dumps(metrics)  # the CLI writes it as JSON
    assert siblings(out) == ["dataset"]  # no temporary directories left behind


def test_corrupt_images_skipped_are_recorded(make_archive: ArchiveBuilder, tmp_path: Path) -> None:
    archive = make_archive(extra={"mini-cifar/test/class2/bad.jpg": b"\xff\xd8garbage"})
    metrics = stage.run(
        params=DataParams(archive=str(archive), on_corrupt="skip"), out=tmp_path / "d"
    )
    assert metrics["corrupt_skipped"] == 1
    manifest = read_dataset_manifest(tmp_path / "d")
    assert manifest["corrupt_images"] == {
        "skipped": 1,
        "per_split": {"train": 0, "test": 1},
        "example": "mini-cifar/test/class2/bad.jpg",
    }


def test_failed_source_leaves_no_output(make_archive: ArchiveBuilder, tmp_path: Path) -> None:
    archive = make_archive(extra={"mini-cifar/train/class0/bad.jpg": b"\xff\xd8garbage"})
    out = tmp_path / "dataset"
    with pytest.raises(DataError, match="unreadable"):
        stage.run(params=DataParams(archive=str(archive), on_corrupt="fail"), out=out)
    assert not out.exists()
    assert siblings(out) == []


def test_failure_while_writing_leaves_no_output_and_keeps_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = DataParams(source="synthetic", synthetic_train=16, synthetic_test=8)
    out = tmp_path / "dataset"

    def half_then_fail(root: Path, *args: Any, **kwargs: Any) -> None:
        (root / "train").mkdir()
        (root / "train" / "shard-00000.pt").write_bytes(b"half a shard")
        raise OSError("No space left on device")

    monkeypatch.setattr(stage, "write_dataset", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        stage.run(params=params, out=out)
    assert siblings(out) == []

    monkeypatch.undo()
    stage.run(params=params, out=out)
    before = read_dataset_manifest(out)["content_hash"]
    monkeypatch.setattr(stage, "write_dataset", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        stage.run(params=params.model_copy(update={"seed": 1}), out=out)
    assert read_dataset_manifest(out)["content_hash"] == before  # previous output intact
    assert siblings(out) == ["dataset"]


def test_synthetic_run_is_reproducible(tmp_path: Path) -> None:
    params = DataParams(source="synthetic", synthetic_train=32, synthetic_test=16)
    stage.run(params=params, out=tmp_path / "a")
    stage.run(params=params, out=tmp_path / "b")
    hashes = [read_dataset_manifest(tmp_path / d)["content_hash"] for d in ("a", "b")]
    assert hashes[0] == hashes[1]
    assert read_dataset_manifest(tmp_path / "a")["archive"] is None


def test_real_cifar10_subset(cifar10_archive: Path, tmp_path: Path) -> None:
    params = DataParams(archive=str(cifar10_archive), train_per_class=20, test_per_class=10)
    metrics = stage.run(params=params, out=tmp_path / "cifar")
    assert metrics["images"] == {"train": 200, "test": 100}
    manifest = read_dataset_manifest(tmp_path / "cifar")
    assert manifest["class_names"] == CIFAR10_CLASSES
    assert manifest["archive"]["sha256"] == sha256_file(cifar10_archive)
    train = load_split(tmp_path / "cifar", "train")
    assert train.images.shape == (200, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [20] * 10
    assert 60 < train.images.float().mean() < 190  # real photos, not blank or saturated
