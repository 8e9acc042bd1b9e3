"""The cifar-10-python reader: both pickle shapes, refused pickles and members, strict structure."""

from __future__ import annotations

import os
import pickle
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ArchiveBuilder
from fixtures.cifar10_python import (
    LABEL_NAMES,
    TRAIN_BATCHES,
    batch_dict,
    make_cifar10_python,
    py2_pickle,
    write_cifar10_tar,
)

from selfsup.data import cifar10_python, download
from selfsup.data.cifar10_python import is_cifar10_python, read_cifar10_python
from selfsup.errors import DataError


def valid_blobs(**replace: bytes) -> dict[str, bytes]:
    """The members of a valid one-image-per-class archive, some replaced."""
    data = np.zeros((10, 3072), np.uint8)
    batch = py2_pickle(batch_dict(data, list(range(10)), [f"{i}.png" for i in range(10)], "b"))
    blobs = {name: batch for name in [*TRAIN_BATCHES, "test_batch"]}
    blobs["batches.meta"] = py2_pickle({"label_names": LABEL_NAMES})
    blobs.update(replace)
    return blobs


@pytest.mark.parametrize("style", ["py2", "py3"])
def test_arrays_labels_names_equal_what_was_pickled(style: str, tmp_path: Path) -> None:
    fixture = make_cifar10_python(tmp_path / "c.tar.gz", per_class=2, style=style)
    data = read_cifar10_python(fixture.path)
    assert data.class_names == data.label_names == LABEL_NAMES
    for split, size in (("train", 100), ("test", 20)):
        part = data.splits[split]
        assert part.images.shape == (size, 3, 32, 32) and part.images.dtype == np.uint8
        # CIFAR rows are 1024 red, 1024 green, 1024 blue values, row-major
        assert np.array_equal(part.images.reshape(size, 3072), fixture.arrays[split])
        assert np.array_equal(
            part.images[:, 1].reshape(size, 1024), fixture.arrays[split][:, 1024:2048]
        )
        assert part.labels.tolist() == fixture.labels[split]
        assert part.names[0] == (
            f"{split}/{LABEL_NAMES[fixture.labels[split][0]]}/00000_{fixture.filenames[split][0]}"
        )
    assert data.md5 != download.CIFAR10_MD5 and not data.md5_official


class RunsShell:
    """Unpickles to os.system("touch MARKER"): what a malicious batch would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_calling_os_system_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"data": RunsShell(marker), "labels": [], "filenames": []}, protocol=2)
    path = write_cifar10_tar(tmp_path / "evil.tar.gz", valid_blobs(data_batch_3=evil))
    with pytest.raises(DataError, match=r"refusing cifar-10-batches-py/data_batch_3: its pickle "
                       r"asks for (posix|os)\.system") as err:  # fmt: skip
        read_cifar10_python(path)
    assert "numpy arrays" in str(err.value)
    assert not marker.exists()
    pickle.loads(evil)  # the same bytes do run the command under a plain unpickler
    assert marker.exists()


def test_eval_in_the_meta_file_is_refused(tmp_path: Path) -> None:
    class Evals:
        def __reduce__(self) -> tuple[Any, ...]:
            return (eval, ("1 + 1",))

    meta = pickle.dumps({"label_names": Evals()}, protocol=4)
    path = write_cifar10_tar(tmp_path / "evil.tar.gz", valid_blobs(**{"batches.meta": meta}))
    with pytest.raises(DataError, match=r"batches.meta: its pickle asks for builtins\.eval"):
        read_cifar10_python(path)


def _batch(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "data": np.zeros((10, 3072), np.uint8),
        "labels": list(range(10)),
        "filenames": [f"{i}.png" for i in range(10)],
    }
    base.update(fields)
    return pickle.dumps({k: v for k, v in base.items() if v is not None}, protocol=4)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"test_batch": _batch(data=np.zeros((10, 3072), np.int16))}, r"uint8 N×3072"),
        ({"test_batch": _batch(data=np.zeros((10, 1024), np.uint8))}, r"1024 values, not 3072"),
        ({"test_batch": _batch(labels=[0] * 9 + [10])}, r"labels must lie in 0\.\.9"),
        ({"test_batch": _batch(labels=[0] * 9)}, r"10 images but 9 labels"),
        ({"test_batch": _batch(labels=None)}, r"has no 'labels' entry"),
        ({"test_batch": _batch(labels=["a"] * 10)}, r"'labels' must be a list of integers"),
        ({"test_batch": pickle.dumps([1, 2], protocol=4)}, r"holds a list, not a CIFAR-10 dict"),
        ({"test_batch": b"\x80\x02}(U\x04data"}, r"not a readable CIFAR-10 pickle"),
        ({"batches.meta": py2_pickle({"label_names": ["a", "../b"]})}, r"cannot be a folder"),
        ({"batches.meta": py2_pickle({"label_names": ["a", "a"]})}, r"must be distinct"),
        ({"batches.meta": py2_pickle({"label_names": [1, 2]})}, r"list of strings"),
    ],
)
def test_structure_is_validated_strictly(
    replace: dict[str, bytes], message: str, tmp_path: Path
) -> None:
    path = write_cifar10_tar(tmp_path / "bad.tar.gz", valid_blobs(**replace))
    with pytest.raises(DataError, match=message):
        read_cifar10_python(path)


def test_a_missing_batch_is_named(tmp_path: Path) -> None:
    blobs = valid_blobs()
    del blobs["data_batch_2"], blobs["test_batch"]
    path = write_cifar10_tar(tmp_path / "part.tar.gz", blobs)
    with pytest.raises(DataError, match=r"not a complete cifar-10-python archive: no "
                       r"cifar-10-batches-py/data_batch_2, test_batch"):  # fmt: skip
        read_cifar10_python(path)


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (_link("cifar-10-batches-py/data_batch_9", "/etc/passwd"), "is a symbolic link"),
        (_file("../escape"), "has a '..' path component"),
        (_file("/abs/path"), "has an absolute path"),
    ],
)
def test_unsafe_members_refuse_the_archive(
    member: tarfile.TarInfo, problem: str, tmp_path: Path
) -> None:
    path = write_cifar10_tar(tmp_path / "unsafe.tar.gz", valid_blobs(), extra=[member])
    with pytest.raises(DataError, match=re.escape(f"member {member.name!r} {problem}")):
        read_cifar10_python(path)


def test_a_duplicated_batch_is_refused(tmp_path: Path) -> None:
    blobs = valid_blobs()
    extra = _file("cifar-10-batches-py/test_batch")
    path = write_cifar10_tar(tmp_path / "dup.tar.gz", blobs, extra=[extra])
    with pytest.raises(DataError, match="appears twice"):
        read_cifar10_python(path)


def test_an_oversized_member_is_refused_from_its_header(tmp_path: Path) -> None:
    path = write_cifar10_tar(tmp_path / "c.tar.gz", valid_blobs())
    with pytest.raises(DataError, match="max_image_bytes=1,000"):
        read_cifar10_python(path, max_member_bytes=1000)


def test_detected_by_content_not_name(make_archive: ArchiveBuilder, tmp_path: Path) -> None:
    python_tar = make_cifar10_python(tmp_path / "renamed-images.tar.gz").path
    assert is_cifar10_python(python_tar)
    assert not is_cifar10_python(make_archive(classes=2, train=2, test=1))
    garbage = tmp_path / "cifar-10-python.tar.gz"
    garbage.write_bytes(b"not a tar")
    assert not is_cifar10_python(garbage)


def test_verify_md5_is_an_error_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = make_cifar10_python(tmp_path / "c.tar.gz")
    with pytest.raises(DataError, match="is not torchvision's c58f30108f718f92721af3b95e74349a"):
        cifar10_python.import_cifar10(fixture.path, tmp_path / "strict", verify_md5=True)
    assert not (tmp_path / "strict").exists()
    manifest = cifar10_python.import_cifar10(fixture.path, tmp_path / "lenient")
    assert manifest["source"]["md5_official"] is False
    # the real file's md5 passes
    md5 = read_cifar10_python(fixture.path).md5
    monkeypatch.setattr(cifar10_python, "CIFAR10_MD5", md5)
    manifest = cifar10_python.import_cifar10(fixture.path, tmp_path / "official", verify_md5=True)
    assert manifest["source"]["md5"] == md5 and manifest["source"]["md5_official"] is True


def test_py2_fixture_matches_the_real_files_opening() -> None:
    """The first bytes of the real data_batch_1 (memo opcodes aside) are what the fixture
    writes: protocol 2, SHORT_BINSTRING keys, numpy.core's reconstructor, a uint8 dtype."""
    head = py2_pickle({"data": np.zeros((10000, 3072), np.uint8)})[:120]
    assert head.startswith(b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\n")
    assert b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNN" in head
