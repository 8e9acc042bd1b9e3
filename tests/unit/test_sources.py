"""The four data sources: labels, sizes, subsets, corrupt images, determinism, error messages."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import CLASS_COLOURS, ArchiveBuilder, encode_image

from selfsup.config import CIFAR10_ARCHIVE_ENV, DataParams
from selfsup.data import sources
from selfsup.data.shards import UNLABELED, Split
from selfsup.errors import DataError

CORRUPT = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3  # a JPEG header, then garbage


def archive_params(path: Path, **overrides: Any) -> DataParams:
    return DataParams(source="cifar10-archive", archive=str(path), **overrides)


def mean_colour(split: Split) -> torch.Tensor:
    """Per-image mean RGB, [N,3]."""
    return split.images.float().mean(dim=(2, 3))


def assert_colours_match_labels(split: Split) -> None:
    """Every image still has its class's colour, so labels travelled with their images."""
    expected = torch.tensor([CLASS_COLOURS[label] for label in split.labels.tolist()]).float()
    assert (mean_colour(split) - expected).abs().max() < 12


# ----------------------------------------------------------------------------------------------
# cifar10-archive


def test_archive_labels_class_names_and_sizes(make_archive: ArchiveBuilder) -> None:
    data = sources.load_source(archive_params(make_archive(classes=3, train=4, test=2)))
    assert data.class_names == ["class0", "class1", "class2"]
    assert {s: len(v) for s, v in data.splits.items()} == {"train": 12, "test": 6}
    for split in data.splits.values():
        assert split.images.shape[1:] == (3, 32, 32) and split.images.dtype == torch.uint8
        assert split.labels.dtype == torch.int64
        assert torch.bincount(split.labels).tolist() == [len(split) // 3] * 3
        assert_colours_match_labels(split)
    assert data.corrupt_skipped == 0 and data.archive is not None


def test_archive_images_resized(make_archive: ArchiveBuilder) -> None:
    path = make_archive(classes=2, train=2, test=1, size=(40, 24))
    data = sources.load_source(archive_params(path, image_size=16))
    assert data.splits["train"].images.shape == (4, 3, 16, 16)
    assert_colours_match_labels(data.splits["train"])


def test_stratified_subset_exact_and_seeded(make_archive: ArchiveBuilder) -> None:
    path = make_archive(classes=3, train=6, test=4)

    def load(seed: int) -> sources.SourceData:
        return sources.load_source(
            archive_params(path, train_per_class=2, test_per_class=3, seed=seed)
        )

    first, again, other = load(0), load(0), load(1)
    assert torch.bincount(first.splits["train"].labels).tolist() == [2, 2, 2]
    assert torch.bincount(first.splits["test"].labels).tolist() == [3, 3, 3]
    for split in ("train", "test"):
        assert torch.equal(first.splits[split].images, again.splits[split].images)
        assert torch.equal(first.splits[split].labels, again.splits[split].labels)
    # Another seed draws another subset (not just another order) of the 6 images per class.
    assert image_set(first.splits["train"]) != image_set(other.splits["train"])
    assert_colours_match_labels(first.splits["train"])


def image_set(split: Split) -> set[bytes]:
    return {image.numpy().tobytes() for image in split.images}


def test_subset_larger_than_class_fails(make_archive: ArchiveBuilder) -> None:
    path = make_archive(classes=2, train=3, test=1)
    with pytest.raises(DataError, match=r"train_per_class=4.*'class0' has only 3") as err:
        sources.load_source(archive_params(path, train_per_class=4))
    assert "lower data.train_per_class" in str(err.value)  # checked before decoding anything


def test_whole_splits_are_shuffled_deterministically(make_archive: ArchiveBuilder) -> None:
    path = make_archive(classes=3, train=5, test=1)
    labels = sources.load_source(archive_params(path)).splits["train"].labels.tolist()
    assert labels != sorted(labels)  # a prefix of the split is a mix of classes
    assert labels == sources.load_source(archive_params(path)).splits["train"].labels.tolist()


def test_corrupt_jpeg_fails_with_count_and_example(make_archive: ArchiveBuilder) -> None:
    extra = {"mini-cifar/train/class1/bad.jpg": CORRUPT, "mini-cifar/test/class0/bad.jpg": CORRUPT}
    path = make_archive(classes=2, train=3, test=2, extra=extra)
    with pytest.raises(DataError, match="2 unreadable image") as err:
        sources.load_source(archive_params(path, on_corrupt="fail"))
    assert "mini-cifar/train/class1/bad.jpg" in str(err.value)
    assert "on_corrupt=skip" in str(err.value)


def test_corrupt_jpeg_skipped_counted_and_logged(
    make_archive: ArchiveBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    extra = {"mini-cifar/train/class1/bad.jpg": CORRUPT}
    path = make_archive(classes=2, train=3, test=2, extra=extra)
    with caplog.at_level(logging.WARNING, logger="selfsup.data.sources"):
        data = sources.load_source(archive_params(path, on_corrupt="skip"))
    assert {s: len(v) for s, v in data.splits.items()} == {"train": 6, "test": 4}
    assert data.corrupt_skipped == 1
    assert data.corrupt["train"].count == 1 and data.corrupt["test"].count == 0
    assert data.corrupt_example == "mini-cifar/train/class1/bad.jpg"
    assert "skipped 1 unreadable" in caplog.text and "bad.jpg" in caplog.text


def test_corrupt_image_in_subset_is_replaced(make_archive: ArchiveBuilder) -> None:
    # class0 has 3 readable train images and 1 corrupt, class1 4 readable: asking for 3 works
    # whatever the seeded order, asking for 4 fails for class0 only.
    good = encode_image(CLASS_COLOURS[1], (32, 32), 99, "JPEG")
    extra = {"mini-cifar/train/class0/bad.jpg": CORRUPT, "mini-cifar/train/class1/x.jpg": good}
    path = make_archive(classes=2, train=3, test=1, extra=extra)
    for seed in range(4):
        data = sources.load_source(
            archive_params(path, on_corrupt="skip", train_per_class=3, seed=seed)
        )
        assert torch.bincount(data.splits["train"].labels).tolist() == [3, 3]
    with pytest.raises(DataError, match="'class0' has only 3 readable"):
        sources.load_source(archive_params(path, on_corrupt="skip", train_per_class=4))


def test_archive_from_env_var(
    make_archive: ArchiveBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CIFAR10_ARCHIVE_ENV, str(make_archive(classes=2, train=1, test=1)))
    data = sources.load_source(DataParams(source="cifar10-archive", archive=None))
    assert len(data.splits["train"]) == 2


def test_no_archive_configured_names_env_var_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CIFAR10_ARCHIVE_ENV, raising=False)
    with pytest.raises(DataError, match=CIFAR10_ARCHIVE_ENV) as err:
        sources.load_source(DataParams(source="cifar10-archive", archive=None))
    assert "data.archive" in str(err.value)


def test_env_var_pointing_nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CIFAR10_ARCHIVE_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(DataError, match=r"missing\.tar\.gz") as err:
        sources.load_source(DataParams(source="cifar10-archive", archive=None))
    assert CIFAR10_ARCHIVE_ENV in str(err.value)


# ----------------------------------------------------------------------------------------------
# cifar10-download: tests/unit/test_download.py; cifar-10-python archives: test_cifar10_python.py


# ----------------------------------------------------------------------------------------------
# folder


def save(path: Path, colour: tuple[int, int, int], size: tuple[int, int], seed: int) -> None:
    fmt = {".jpg": "JPEG", ".png": "PNG", ".bmp": "BMP"}[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(colour, size, seed, fmt))


def labelled_folder(root: Path, per_class: int = 5) -> Path:
    sizes = [(32, 32), (50, 20), (17, 64), (100, 100), (8, 9)]
    for c in range(3):
        for i in range(per_class):
            suffix = [".jpg", ".png", ".bmp"][i % 3]
            save(root / f"kind{c}" / f"img{i}{suffix}", CLASS_COLOURS[c], sizes[i % 5], 10 * c + i)
    return root


def test_folder_labelled_mixed_sizes_split_by_fraction(tmp_path: Path) -> None:
    root = labelled_folder(tmp_path / "photos", per_class=5)
    (root / "notes.txt").write_text("not an image")
    params = DataParams(source="folder", folder=str(root), image_size=24, test_fraction=0.4)
    data = sources.load_source(params)
    assert data.class_names == ["kind0", "kind1", "kind2"]
    train, test = data.splits["train"], data.splits["test"]
    assert torch.bincount(test.labels).tolist() == [2, 2, 2]  # round(5 * 0.4) per class
    assert torch.bincount(train.labels).tolist() == [3, 3, 3]
    assert train.images.shape == (9, 3, 24, 24) and test.images.shape == (6, 3, 24, 24)
    assert_colours_match_labels(train)
    again = sources.load_source(params)
    assert torch.equal(again.splits["test"].images, test.images)


def test_folder_modes_converted_to_rgb(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "modes"
    for i, mode in enumerate(["L", "RGBA", "P", "CMYK", "I;16"]):
        (root / "c").mkdir(parents=True, exist_ok=True)
        fmt, suffix = ("JPEG", ".jpg") if mode == "CMYK" else ("PNG", ".png")
        Image.new(mode, (10 + i, 12)).save(root / "c" / f"{i}{suffix}", format=fmt)
    params = DataParams(source="folder", folder=str(root), image_size=8, test_fraction=0.2)
    data = sources.load_source(params)
    assert len(data.splits["train"]) + len(data.splits["test"]) == 5
    assert data.splits["train"].images.shape[1:] == (3, 8, 8)


def test_folder_with_train_and_test(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    labelled_folder(root / "train", per_class=3)
    labelled_folder(root / "test", per_class=2)
    data = sources.load_source(DataParams(source="folder", folder=str(root), test_per_class=1))
    assert {s: len(v) for s, v in data.splits.items()} == {"train": 9, "test": 3}
    assert data.class_names == ["kind0", "kind1", "kind2"]
    assert_colours_match_labels(data.splits["test"])


def test_folder_unlabeled(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for i in range(10):
        save(root / f"{i}.png", CLASS_COLOURS[i % 5], (20 + i, 30), i)
    params = DataParams(source="folder", folder=str(root), image_size=16, test_fraction=0.3)
    data = sources.load_source(params)
    assert data.class_names == []
    assert (len(data.splits["train"]), len(data.splits["test"])) == (7, 3)
    assert all((s.labels == UNLABELED).all() for s in data.splits.values())
    assert data.splits["train"].images.shape == (7, 3, 16, 16)
    # For unlabeled data a per-class subset is a total.
    subset = sources.load_source(params.model_copy(update={"train_per_class": 4}))
    assert len(subset.splits["train"]) == 4


def test_folder_mixing_flat_images_and_classes(tmp_path: Path) -> None:
    root = labelled_folder(tmp_path / "mixed", per_class=1)
    save(root / "stray.png", CLASS_COLOURS[0], (8, 8), 0)
    with pytest.raises(DataError, match="mixes images directly in it"):
        sources.load_source(DataParams(source="folder", folder=str(root)))


def test_folder_corrupt_file(tmp_path: Path) -> None:
    root = labelled_folder(tmp_path / "c", per_class=5)
    (root / "kind1" / "broken.jpg").write_bytes(CORRUPT)
    params = DataParams(source="folder", folder=str(root))
    with pytest.raises(DataError, match="1 unreadable") as err:
        sources.load_source(params)
    assert str(root / "kind1" / "broken.jpg") in str(err.value)
    data = sources.load_source(params.model_copy(update={"on_corrupt": "skip"}))
    assert data.corrupt_skipped == 1
    assert len(data.splits["train"]) + len(data.splits["test"]) == 15


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "holds no images"),
        (lambda root: (root / "train").mkdir(parents=True), "no test/"),
    ],
)
def test_folder_errors(tmp_path: Path, setup: Any, message: str) -> None:
    root = tmp_path / "f"
    setup(root)
    with pytest.raises(DataError, match=message):
        sources.load_source(DataParams(source="folder", folder=str(root)))


def test_folder_not_set() -> None:
    with pytest.raises(DataError, match=r"data\.folder"):
        sources.load_source(DataParams(source="folder"))


# ----------------------------------------------------------------------------------------------
# synthetic


def synthetic(**overrides: Any) -> sources.SourceData:
    base: dict[str, Any] = {"source": "synthetic", "synthetic_train": 64, "synthetic_test": 32}
    return sources.load_source(DataParams(**{**base, **overrides}))


def test_synthetic_shapes_labels_and_determinism() -> None:
    data = synthetic(synthetic_classes=5, image_size=20)
    assert data.class_names == ["disk", "square", "triangle", "plus", "ring"]
    train, test = data.splits["train"], data.splits["test"]
    assert train.images.shape == (64, 3, 20, 20) and test.images.shape == (32, 3, 20, 20)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert int(train.labels.min()) >= 0 and int(train.labels.max()) < 5
    assert set(train.labels.tolist()) == set(range(5))
    again = synthetic(synthetic_classes=5, image_size=20)
    assert torch.equal(again.splits["train"].images, train.images)
    assert torch.equal(again.splits["test"].labels, test.labels)
    assert not torch.equal(
        synthetic(synthetic_classes=5, image_size=20, seed=1).splits["train"].images, train.images
    )
    assert not torch.equal(train.images[:32], test.images)  # splits are different draws


def test_synthetic_images_vary_within_a_class() -> None:
    train = synthetic(synthetic_classes=2).splits["train"]
    same_class = train.images[train.labels == 0].float()
    assert same_class.std(dim=0).mean() > 20  # position, scale and colour vary
    assert train.images.float().std() > 40  # not blank


def test_synthetic_colour_carries_no_class_information() -> None:
    train = synthetic(synthetic_classes=4, synthetic_train=400).splits["train"]
    brightness = train.images.float().mean(dim=(1, 2, 3))
    per_class = torch.stack([brightness[train.labels == c].mean() for c in range(4)])
    assert float(per_class.max() - per_class.min()) < 25  # of 255; light/dark is a coin flip


def test_synthetic_classes_separable_by_shape() -> None:
    """A nearest-centroid classifier on edge maps beats chance clearly: shapes carry the label."""
    data = synthetic(synthetic_classes=4, synthetic_train=400, synthetic_test=200)

    def features(split: Split) -> torch.Tensor:
        grey = split.images.float().mean(dim=1)
        edges = (grey[:, 1:, :] - grey[:, :-1, :]).abs()[:, :, :-1] + (
            grey[:, :, 1:] - grey[:, :, :-1]
        ).abs()[:, :-1, :]
        hist = torch.nn.functional.avg_pool2d(edges.unsqueeze(1), 4).flatten(1)
        return hist / hist.norm(dim=1, keepdim=True)

    train, test = data.splits["train"], data.splits["test"]
    f_train, f_test = features(train), features(test)
    centroids = torch.stack([f_train[train.labels == c].mean(0) for c in range(4)])
    predicted = torch.cdist(f_test, centroids).argmin(dim=1)
    accuracy = (predicted == test.labels).float().mean().item()
    assert accuracy > 0.4  # chance is 0.25


def test_synthetic_subset() -> None:
    data = synthetic(synthetic_classes=4, train_per_class=5)
    assert torch.bincount(data.splits["train"].labels).tolist() == [5] * 4
    with pytest.raises(DataError, match="has only 8"):
        synthetic(synthetic_classes=4, test_per_class=9)


# ----------------------------------------------------------------------------------------------
# decoding


def test_decode_formats_and_garbage() -> None:
    for fmt in ("JPEG", "PNG", "BMP", "TIFF", "GIF", "WEBP"):
        image = sources.decode_image_bytes(encode_image((200, 40, 40), (12, 7), 0, fmt), 10)
        assert image is not None and image.shape == (3, 10, 10) and image.dtype == torch.uint8, fmt
        assert image[0].float().mean() > 150 and image[1].float().mean() < 90, fmt
    assert sources.decode_image_bytes(CORRUPT, 10) is None
    assert sources.decode_image_bytes(b"", 10) is None
    assert sources.decode_image_bytes(b"GIF89a" + b"\x00" * 20, 10) is None
