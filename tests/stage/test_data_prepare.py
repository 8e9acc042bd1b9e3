"""``selfsup data prepare`` end to end: written shards round-trip, manifest, atomic failure."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ArchiveBuilder, photo_folder
from PIL import Image

from selfsup.config import DataParams
from selfsup.data import sources, stage
from selfsup.data.shards import load_split, read_dataset_manifest, read_sample_ids
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
    assert sorted(manifest["files"]) == sorted([*shards, "ids.json"])
    for rel, digest in manifest["files"].items():
        assert sha256_file(out / rel) == digest
    assert manifest["source"] == "cifar10-archive"
    assert manifest["splits"] == {"train": 12, "test": 9}
    assert manifest["class_names"] == ["class0", "class1", "class2"]
    assert manifest["params"] == params.model_dump()
    assert manifest["archive"] == {"path": str(archive), "sha256": sha256_file(archive)}
    assert manifest["corrupt_images"]["skipped"] == 0
    assert manifest["sample_ids"]["file"] == "ids.json"
    assert manifest["sample_ids"]["prefix"] == "mini-cifar/"

    # each row's source id names the member it was decoded from (oracle: the fixture's own
    # members, decoded by PIL: every image is distinct, and its nearest member is itself)
    ids = read_sample_ids(out, manifest)
    assert ids is not None and ids.users is None and ids.prefix == "mini-cifar/"
    members = fixture_images(archive)
    for split in ("train", "test"):
        rows = load_split(out, split).images.float()
        assert len(ids.source[split]) == len(rows) == len(set(ids.source[split]))
        names = sorted(members)
        stacked = torch.stack([members[n] for n in names]).float()
        for row, source_id in zip(rows, ids.source[split], strict=True):
            nearest = names[int((stacked - row).abs().flatten(1).mean(1).argmin())]
            assert nearest == "mini-cifar/" + source_id and source_id.startswith(f"{split}/")

    assert metrics["images"] == {"train": 12, "test": 9}
    assert metrics["corrupt_skipped"] == 0 and metrics["seconds"] > 0
    assert metrics["images_per_second"] > 0
    json.dumps(metrics)  # the CLI writes it as JSON
    assert siblings(out) == ["dataset"]  # no temporary directories left behind


def fixture_images(archive: Path) -> dict[str, torch.Tensor]:
    """Every image member of ``archive``, decoded with PIL: ``name → uint8 [3,H,W]``."""
    out: dict[str, torch.Tensor] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None and member.name.endswith(".jpg"):
                with Image.open(io.BytesIO(handle.read())) as image:
                    pixels = np.asarray(image.convert("RGB"))
                out[member.name] = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    return out


def test_folder_keeps_paths_and_user_ids_of_every_row(tmp_path: Path) -> None:
    pixels = photo_folder(tmp_path / "photos")
    csv = tmp_path / "owners.csv"
    owners = {"train/class0/photo-000.png": "alice", "test/class1/photo-101.png": "alice"}
    owners |= {"train/class2/photo-203.png": "bob"}
    csv.write_text("file,id\n" + "".join(f"{f},{u}\n" for f, u in owners.items()))
    params = DataParams(source="folder", folder=str(tmp_path / "photos"), ids_csv=str(csv))
    stage.run(params=params, out=tmp_path / "d")

    manifest = read_dataset_manifest(tmp_path / "d")
    assert manifest["sample_ids"]["user_ids"] == {
        "csv": str(csv),
        "sha256": sha256_file(csv),
        "images_without_id": len(pixels) - 3,
    }
    ids = read_sample_ids(tmp_path / "d", manifest)
    assert ids is not None and ids.users is not None
    for split in ("train", "test"):
        rows = load_split(tmp_path / "d", split).images
        assert sorted(ids.source[split]) == sorted(n for n in pixels if n.startswith(split))
        for row, name, user in zip(rows, ids.source[split], ids.users[split], strict=True):
            assert torch.equal(row, pixels[name])  # the row is that file's pixels
            assert user == owners.get(name)

    # the same pixels under another mapping are another dataset version
    csv.write_text("file,id\ntrain/class0/photo-000.png,carol\n")
    stage.run(params=params, out=tmp_path / "e")
    first, second = manifest, read_dataset_manifest(tmp_path / "e")
    assert first["files"]["train/shard-00000.pt"] == second["files"]["train/shard-00000.pt"]
    assert first["content_hash"] != second["content_hash"]


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("name,user\n", "needs the columns file,id"),
        ("file,id\ntrain/class0/nope.png,u1\n", "'train/class0/nope.png' is not an image"),
        ("file,id\ntrain/class0/photo-000.png,u\ntrain/class0/photo-000.png,v\n", "twice"),
        ("file,id\ntrain/class0/photo-000.png,\n", "empty id"),
        ("file,id\ntrain/class0/photo-000.png,train/3\n", "reads as a row id"),
    ],
)
def test_a_bad_ids_csv_is_one_clear_error(tmp_path: Path, csv: str, message: str) -> None:
    photo_folder(tmp_path / "photos", classes=1, train=2, test=1)
    (tmp_path / "ids.csv").write_text(csv)
    params = DataParams(
        source="folder", folder=str(tmp_path / "photos"), ids_csv=str(tmp_path / "ids.csv")
    )
    with pytest.raises(DataError, match=message):
        stage.run(params=params, out=tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_ids_csv_needs_a_folder_source() -> None:
    with pytest.raises(ValueError, match=r"ids_csv goes with data\.source=folder"):
        DataParams(source="synthetic", ids_csv="ids.csv")


def test_synthetic_data_keeps_no_sample_ids(tmp_path: Path) -> None:
    stage.run(params=DataParams(source="synthetic", synthetic_train=8), out=tmp_path / "s")
    manifest = read_dataset_manifest(tmp_path / "s")
    assert manifest["sample_ids"] is None and "ids.json" not in manifest["files"]
    assert read_sample_ids(tmp_path / "s", manifest) is None


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


def test_real_cifar10_train_statistics_are_the_published_ones(
    cifar10_archive: Path, tmp_path: Path
) -> None:
    """The manifest's normalisation of the full train split against CIFAR-10's well-known
    channel statistics (0.4914, 0.4822, 0.4465 / 0.2470, 0.2435, 0.2616); JPEG re-encoding of
    this archive moves them by a few thousandths at most."""
    params = DataParams(archive=str(cifar10_archive), test_per_class=1)
    stage.run(params=params, out=tmp_path / "cifar")
    manifest = read_dataset_manifest(tmp_path / "cifar")
    stats = manifest["normalization"]
    assert stats["split"] == "train" and manifest["grayscale"] is False
    for got, published in zip(
        stats["mean"] + stats["std"], (0.4914, 0.4822, 0.4465, 0.2470, 0.2435, 0.2616), strict=True
    ):
        assert abs(got - published) < 0.01, (stats, published)
