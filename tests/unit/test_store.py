"""Atomic writes and manifests: nothing half-written is ever visible; tampering is detected."""

import json
import os
import stat
from pathlib import Path

import pytest

from selfsup.errors import IntegrityError
from selfsup.store import atomic_directory, atomic_write_json, read_manifest, write_manifest


def test_failed_directory_write_leaves_previous_content(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    with atomic_directory(final) as tmp:
        (tmp / "a.txt").write_text("first")
        write_manifest(tmp, "test", {})
    with pytest.raises(RuntimeError), atomic_directory(final) as tmp:
        (tmp / "a.txt").write_text("second, half done")
        raise RuntimeError("killed")
    assert (final / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]  # no temp left behind


def test_directory_replaced_on_success(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    for content in ("one", "two"):
        with atomic_directory(final) as tmp:
            (tmp / "a.txt").write_text(content)
            write_manifest(tmp, "test", {})
    assert (final / "a.txt").read_text() == "two"


def test_an_output_that_is_not_an_artifact_of_its_kind_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's folder given as --out, --out ., a file, or another kind of artifact: one
    OutputError before anything is moved, and the contents are untouched."""
    from selfsup.errors import OutputError
    from selfsup.store.atomic import check_replaceable

    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match="is not a selfsup artifact"), atomic_directory(mine):
        pytest.fail("the block must not run")
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"]
    monkeypatch.chdir(mine)
    for here in (Path("."), Path(".."), mine):
        with pytest.raises(OutputError, match="must name a directory of its own"):
            check_replaceable(here)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        check_replaceable(tmp_path / "file")
    model = tmp_path / "model"
    with atomic_directory(model, "encoder") as tmp:
        write_manifest(tmp, "encoder", {})
    with pytest.raises(OutputError, match="holds a 'encoder' artifact, not a 'dataset'"):
        check_replaceable(model, "dataset")
    with atomic_directory(model, "encoder") as tmp:  # the same kind: replaced
        write_manifest(tmp, "encoder", {"again": True})
    assert read_manifest(model)["params"] == {"again": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "model", "photos"]


def test_temporaries_of_killed_writers_are_cleaned_and_a_live_ones_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = tmp_path / f".out.{int(dead.stdout)}.abc123.tmp"
    gone.mkdir()
    (gone / "half.bin").write_bytes(b"half")
    (tmp_path / f".out.{int(dead.stdout)}.def456.old").mkdir()
    live = tmp_path / f".out.{os.getppid()}.xyz.tmp"  # a running process's
    live.mkdir()
    other = tmp_path / ".other.1.x.tmp"  # another output's
    other.mkdir()
    with atomic_directory(tmp_path / "out") as tmp:
        write_manifest(tmp, "test", {})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, other.name, "out"])


def test_atomic_json_round_trip(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "m.json", {"b": 1, "a": [1.5]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": [1.5], "b": 1}


def test_manifest_detects_changed_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.bin").write_bytes(b"abc")
    manifest = write_manifest(tmp_path, "thing", {"p": 1}, extra="field")
    assert manifest["files"] == {
        "sub/x.bin": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    }
    assert read_manifest(tmp_path, kind="thing")["extra"] == "field"
    with pytest.raises(IntegrityError, match="expected a 'model'"):
        read_manifest(tmp_path, kind="model")
    (tmp_path / "sub" / "x.bin").write_bytes(b"abd")
    with pytest.raises(IntegrityError, match="does not match"):
        read_manifest(tmp_path)
    (tmp_path / "sub" / "x.bin").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        read_manifest(tmp_path)


def test_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match=r"no manifest\.json"):
        read_manifest(tmp_path)


def test_published_files_follow_the_umask_not_mkstemp(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "artifact") as tmp:
            atomic_write_json(tmp / "m.json", {})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "artifact").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "artifact" / "m.json").stat().st_mode) == 0o644


def test_failed_file_copy_leaves_the_target_and_no_temp(tmp_path: Path) -> None:
    from selfsup.store.atomic import atomic_copy_file

    target = tmp_path / "out" / "weights.bin"
    atomic_copy_file(_write(tmp_path / "a.bin", b"first"), target)
    with pytest.raises(FileNotFoundError):
        atomic_copy_file(tmp_path / "missing.bin", target)
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["weights.bin"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
