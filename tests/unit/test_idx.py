"""MNIST-format (IDX) import: hand-packed files (the format's spec, not the parser) round-trip into
an image folder the ``folder`` source reads; malformed files are refused before anything is
written; Debian's Fashion-MNIST has the sizes its authors publish."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import DataParams
from selfsup.data import idx
from selfsup.data import stage as data_stage
from selfsup.data.shards import read_dataset_manifest
from selfsup.errors import DataError

runner = CliRunner()


def pack(array: np.ndarray, dims: int) -> bytes:
    """IDX by its spec: 0x0000, type 0x08 (unsigned byte), ndim, big-endian uint32 sizes, data."""
    assert array.ndim == dims
    return bytes([0, 0, 0x08, dims]) + struct.pack(f">{dims}I", *array.shape) + array.tobytes()


def write_idx_dir(
    root: Path, sizes: dict[str, int], side: int = 6, classes: int = 3, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    made = {}
    for split, count in sizes.items():
        images = rng.integers(0, 256, (count, side, side), dtype=np.uint8)
        labels = (np.arange(count) % classes).astype(np.uint8)
        image_name, label_name = idx.FILES[split]
        (root / f"{image_name}.gz").write_bytes(gzip.compress(pack(images, 3)))
        (root / f"{label_name}.gz").write_bytes(gzip.compress(pack(labels, 1)))
        made[split] = (images, labels)
    return made


def test_import_writes_every_image_losslessly_in_its_class_folder(tmp_path: Path) -> None:
    made = write_idx_dir(tmp_path / "src", {"train": 7, "test": 4})
    manifest = idx.import_idx(tmp_path / "src", tmp_path / "out", classes="a,b,c")
    assert manifest["splits"] == {"train": 7, "test": 4}
    assert manifest["class_names"] == ["a", "b", "c"] and manifest["image_shape"] == [6, 6]
    for split, (images, labels) in made.items():
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            path = tmp_path / "out" / split / "abc"[label] / f"{i:05d}.png"
            with Image.open(path) as png:
                assert png.mode == "L"
                assert np.array_equal(np.asarray(png), image)


def test_folder_source_reads_the_import_as_grayscale_and_records_the_resize(
    tmp_path: Path,
) -> None:
    write_idx_dir(tmp_path / "src", {"train": 9, "test": 3})
    idx.import_idx(tmp_path / "src", tmp_path / "folder", classes="digits")
    params = DataParams(source="folder", folder=str(tmp_path / "folder"), image_size=8)
    metrics = data_stage.run(params=params, out=tmp_path / "data")
    assert metrics["images"] == {"train": 9, "test": 3}
    manifest = read_dataset_manifest(tmp_path / "data")
    assert manifest["grayscale"] is True
    assert manifest["class_names"] == ["0", "1", "2"]  # the digits classes with images
    assert manifest["stored_sizes"]["train"] == {
        "sizes": {"6x6": 9},
        "resized_to": [8, 8],
        "resized": 9,
    }


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d[:2] + b"\x09" + d[3:], "not an IDX file of unsigned bytes"),
        (lambda d: d[:-1], "truncated or padded"),
        (lambda d: d + b"\x00", "truncated or padded"),
        (lambda d: d[:5], "shorter than an IDX header"),
    ],
)
def test_malformed_image_file_is_refused_and_nothing_is_written(
    tmp_path: Path, corrupt, message: str
) -> None:
    write_idx_dir(tmp_path / "src", {"train": 4, "test": 2})
    path = tmp_path / "src" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(corrupt(gzip.decompress(path.read_bytes()))))
    with pytest.raises(DataError, match=message):
        idx.import_idx(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_labels_beyond_the_class_names_and_count_mismatch_are_refused(tmp_path: Path) -> None:
    write_idx_dir(tmp_path / "src", {"train": 4, "test": 2}, classes=3)
    with pytest.raises(DataError, match="label 2 but only 2 class names"):
        idx.import_idx(tmp_path / "src", tmp_path / "out", classes="x,y")
    labels = tmp_path / "src" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(pack(np.zeros(5, np.uint8), 1)))
    with pytest.raises(DataError, match="2 images but 5 labels"):
        idx.import_idx(tmp_path / "src", tmp_path / "out")


def test_missing_files_bad_gzip_and_bad_class_lists_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        idx.import_idx(tmp_path / "nowhere", tmp_path / "out")
    write_idx_dir(tmp_path / "src", {"train": 2})  # no test files
    with pytest.raises(DataError, match=r"no t10k-images-idx3-ubyte\.gz"):
        idx.import_idx(tmp_path / "src", tmp_path / "out")
    write_idx_dir(tmp_path / "src", {"train": 2, "test": 2})
    (tmp_path / "src" / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        idx.import_idx(tmp_path / "src", tmp_path / "out")
    for classes in ("a,,b", "a,a", "a/b,c"):
        with pytest.raises(DataError, match="--classes"):
            idx.class_names_for(classes)


def test_oversized_payload_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_idx_dir(tmp_path / "src", {"train": 40, "test": 2})
    monkeypatch.setattr(idx, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DataError, match="more than 1000 bytes"):
        idx.import_idx(tmp_path / "src", tmp_path / "out")


def test_cli_imports_and_reports_a_bad_directory_in_one_line(tmp_path: Path) -> None:
    write_idx_dir(tmp_path / "src", {"train": 3, "test": 3})
    ok = runner.invoke(app, ["data", "import-idx", str(tmp_path / "src"), "--out", str(tmp_path)])
    assert ok.exit_code == 2 and "not a selfsup artifact" in ok.output  # holds src/: kept
    ok = runner.invoke(
        app, ["data", "import-idx", str(tmp_path / "src"), "--out", str(tmp_path / "o")]
    )
    assert ok.exit_code == 0, ok.output
    assert "imported train 3, test 3 images (10 classes)" in ok.output
    bad = runner.invoke(
        app, ["data", "import-idx", str(tmp_path / "none"), "--out", str(tmp_path / "p")]
    )
    assert bad.exit_code == 2 and "not a directory of MNIST-format files" in bad.output


def test_debian_fashion_mnist_has_the_published_split_sizes() -> None:
    """Debian's dataset-fashion-mnist (installed by ``make system-deps``): 60,000 training and
    10,000 test images of 28×28, exactly 6,000 and 1,000 per class, as Zalando publishes."""
    names = idx.class_names_for("fashion-mnist")
    for split, per_class in (("train", 6000), ("test", 1000)):
        data = idx.read_idx_split(idx.DEBIAN_FASHION_MNIST, split, len(names))
        assert data.images.shape == (10 * per_class, 28, 28)
        assert np.bincount(data.labels, minlength=10).tolist() == [per_class] * 10
