"""cifar-10-python.tar.gz end to end, offline: import → data stage → dataset, checked against the
arrays that were pickled (the oracle), and the tar read directly gives the identical dataset."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from fixtures.cifar10_python import LABEL_NAMES, Cifar10Fixture, make_cifar10_python
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import CIFAR10_ARCHIVE_ENV, DataParams
from selfsup.data import cifar10_python, stage
from selfsup.data.shards import load_split, read_dataset_manifest
from selfsup.errors import IntegrityError
from selfsup.store import read_manifest, sha256_file

runner = CliRunner()


def by_class(images: np.ndarray, labels: list[int], names: list[str]) -> dict[str, list[bytes]]:
    """Class name → the sorted raw bytes of its images (N×3072 rows): order-free comparison."""
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for row, label in zip(images.reshape(len(labels), -1), labels, strict=True):
        grouped[names[label]].append(row.tobytes())
    return {name: sorted(rows) for name, rows in grouped.items()}


def assert_dataset_is_the_pickled_arrays(dataset: Path, fixture: Cifar10Fixture) -> None:
    manifest = read_dataset_manifest(dataset)  # every shard's sha256 verified
    assert manifest["class_names"] == sorted(fixture.label_names)
    assert manifest["splits"] == {s: len(fixture.labels[s]) for s in ("train", "test")}
    for split in ("train", "test"):
        loaded = load_split(dataset, split)
        got = by_class(loaded.images.numpy(), loaded.labels.tolist(), manifest["class_names"])
        expected = by_class(fixture.arrays[split], fixture.labels[split], fixture.label_names)
        assert got == expected


def test_import_then_prepare_gives_the_pickled_pixels(tmp_path: Path) -> None:
    fixture = make_cifar10_python(tmp_path / "cifar-10-python.tar.gz", per_class=2)
    out = tmp_path / "imported"
    start = time.perf_counter()
    done = runner.invoke(app, ["data", "import-cifar10", str(fixture.path), "--out", str(out)])
    seconds = time.perf_counter() - start
    assert done.exit_code == 0, done.output
    assert "imported 120 images (train 100, test 20; 10 classes)" in done.output
    assert "md5 differs from torchvision's" in done.output
    print(f"import of the 120-image fixture: {seconds:.3f} s")

    manifest = read_manifest(out, kind=cifar10_python.IMPORT_KIND)  # verifies the tar's sha256
    assert manifest["files"] == {"cifar10-png.tar": sha256_file(out / "cifar10-png.tar")}
    assert manifest["source"]["sha256"] == sha256_file(fixture.path)
    assert manifest["splits"] == {"train": 100, "test": 20}
    assert manifest["class_names"] == LABEL_NAMES

    for name, archive in (("from-dir", out), ("from-tar", out / "cifar10-png.tar")):
        dataset = tmp_path / name
        metrics = stage.run(params=DataParams(archive=str(archive), shard_size=32), out=dataset)
        assert metrics["images"] == {"train": 100, "test": 20} and metrics["classes"] == 10
        assert_dataset_is_the_pickled_arrays(dataset, fixture)


def shards(dataset: Path) -> dict[str, str]:
    return read_dataset_manifest(dataset)["files"]


@pytest.mark.parametrize("style", ["py2", "py3"])
def test_the_tar_read_directly_equals_its_import(
    style: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shuffled = ["truck", "cat", "airplane", "ship", "bird", "deer", "dog", "frog", "horse", "car"]
    fixture = make_cifar10_python(tmp_path / "c.tar.gz", style=style, label_names=shuffled)
    cifar10_python.import_cifar10(fixture.path, tmp_path / "imported")
    stage.run(params=DataParams(archive=str(tmp_path / "imported")), out=tmp_path / "via-import")
    # as make run passes it: the env var naming the tar itself
    monkeypatch.setenv(CIFAR10_ARCHIVE_ENV, str(fixture.path))
    stage.run(params=DataParams(archive=None, train_per_class=3), out=tmp_path / "subset")
    stage.run(params=DataParams(archive=None), out=tmp_path / "direct")

    assert shards(tmp_path / "direct") == shards(tmp_path / "via-import")  # byte-identical
    assert_dataset_is_the_pickled_arrays(tmp_path / "direct", fixture)
    archive = read_dataset_manifest(tmp_path / "direct")["archive"]
    assert archive["format"] == "cifar-10-python" and archive["md5_official"] is False
    assert archive["sha256"] == sha256_file(fixture.path)
    assert read_dataset_manifest(tmp_path / "subset")["splits"] == {"train": 30, "test": 20}


def test_a_changed_import_is_refused(tmp_path: Path) -> None:
    fixture = make_cifar10_python(tmp_path / "c.tar.gz")
    out = tmp_path / "imported"
    cifar10_python.import_cifar10(fixture.path, out)
    with open(out / "cifar10-png.tar", "r+b") as handle:
        handle.seek(2048)
        handle.write(b"\x00")
    with pytest.raises(IntegrityError, match=r"cifar10-png\.tar"):
        stage.run(params=DataParams(archive=str(out)), out=tmp_path / "dataset")
    assert not (tmp_path / "dataset").exists()


def test_import_is_reproducible(tmp_path: Path) -> None:
    fixture = make_cifar10_python(tmp_path / "c.tar.gz")
    first = cifar10_python.import_cifar10(fixture.path, tmp_path / "a")
    second = cifar10_python.import_cifar10(fixture.path, tmp_path / "b")
    assert first["files"] == second["files"] and first["content_hash"] == second["content_hash"]


def test_import_of_a_wrong_file_is_one_error_line(tmp_path: Path) -> None:
    wrong = tmp_path / "cifar-10-python.tar.gz"
    wrong.write_bytes(b"not a tar")
    done = runner.invoke(app, ["data", "import-cifar10", str(wrong), "--out", str(tmp_path / "o")])
    assert done.exit_code == 2
    assert "not a readable tar(.gz) archive" in done.output
    assert not (tmp_path / "o").exists()
