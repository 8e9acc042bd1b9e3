"""The artifact layout over the local backend: round trip, dedup, interrupted push, corruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfsup.errors import IntegrityError, StoreError
from selfsup.store import sha256_file, write_manifest
from selfsup.store.artifacts import ArtifactStore, blob_key, manifest_key
from selfsup.store.backend import LocalBackend, Progress


def make_artifact(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    write_manifest(root, "test", {})
    return root


class CountingBackend(LocalBackend):
    """A local backend that counts blob uploads and can die after ``fail_after`` of them."""

    def __init__(self, root: Path, fail_after: int | None = None) -> None:
        super().__init__(root)
        self.uploads: list[str] = []
        self.fail_after = fail_after

    def put_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        if self.fail_after is not None and len(self.uploads) >= self.fail_after:
            raise ConnectionError("killed midway")
        super().put_file(key, path, progress)
        self.uploads.append(key)


FILES = {"a.bin": b"a" * 1000, "sub/b.bin": b"bbb", "sub/c.bin": b"c" * 70_000, "dup.bin": b"bbb"}


def test_round_trip_preserves_every_file_and_the_manifest(tmp_path: Path) -> None:
    src = make_artifact(tmp_path / "src", FILES)
    store = ArtifactStore(LocalBackend(tmp_path / "store"), workers=1)
    store.push(src, "datasets/x")
    store.pull("datasets/x", tmp_path / "dst")
    for rel, data in FILES.items():
        assert (tmp_path / "dst" / rel).read_bytes() == data
    # the pulled manifest is the pushed one, bound to the name it was published under
    pulled = json.loads((tmp_path / "dst/manifest.json").read_text())
    assert pulled == {**json.loads((src / "manifest.json").read_text()), "name": "datasets/x"}
    assert store.names() == ["datasets/x"] and store.names("datasets") == ["datasets/x"]


def test_blobs_are_content_addressed_and_stored_once(tmp_path: Path) -> None:
    src = make_artifact(tmp_path / "src", FILES)
    backend = CountingBackend(tmp_path / "store")
    store = ArtifactStore(backend, workers=1)
    store.push(src, "one")
    assert len(backend.uploads) == 3  # b.bin and dup.bin share one blob
    for rel, data in FILES.items():
        key = blob_key(sha256_file(src / rel))
        assert backend.get_bytes(key) == data
    store.push(src, "two")  # same content under a second name: nothing to upload
    assert len(backend.uploads) == 3


def test_killed_push_publishes_nothing_and_a_rerun_completes_it(tmp_path: Path) -> None:
    src = make_artifact(tmp_path / "src", FILES)
    backend = CountingBackend(tmp_path / "store", fail_after=1)
    store = ArtifactStore(backend, workers=1)
    with pytest.raises(ConnectionError):
        store.push(src, "m")
    assert not store.exists("m") and store.names() == []
    assert len(backend.uploads) == 1
    backend.fail_after = None
    store.push(src, "m")
    assert len(backend.uploads) == 3  # only the two missing blobs were uploaded again
    store.pull("m", tmp_path / "dst")
    assert (tmp_path / "dst/sub/c.bin").read_bytes() == FILES["sub/c.bin"]


def test_a_corrupt_blob_is_refused_and_the_target_kept(tmp_path: Path) -> None:
    src = make_artifact(tmp_path / "src", FILES)
    backend = LocalBackend(tmp_path / "store")
    store = ArtifactStore(backend)
    store.push(src, "m")
    make_artifact(tmp_path / "dst", {"old.txt": b"previous"})  # an earlier artifact
    backend.put_bytes(blob_key(sha256_file(src / "a.bin")), b"A" * 1000)
    with pytest.raises(IntegrityError, match="corrupt"):
        store.pull("m", tmp_path / "dst")
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["manifest.json", "old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src", "store"]


def test_a_locally_corrupt_artifact_is_never_pushed(tmp_path: Path) -> None:
    src = make_artifact(tmp_path / "src", FILES)
    claimed = json.loads((src / "manifest.json").read_text())["files"]["a.bin"]
    (src / "a.bin").write_bytes(b"changed")
    backend = LocalBackend(tmp_path / "store")
    store = ArtifactStore(backend)
    with pytest.raises(IntegrityError, match=r"a\.bin does not match its sha256"):
        store.push(src, "m")
    assert store.names() == [] and not backend.exists(blob_key(claimed))
    (src / "sub/b.bin").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.push(src, "m")


@pytest.mark.parametrize("rel", ["../evil", "/etc/passwd", "a/../../b", "a//b"])
def test_a_manifest_with_an_escaping_path_is_refused(tmp_path: Path, rel: str) -> None:
    backend = LocalBackend(tmp_path / "store")
    manifest = {"kind": "x", "files": {rel: "0" * 64}}
    backend.put_bytes(manifest_key("m"), json.dumps(manifest).encode())
    with pytest.raises(IntegrityError, match="unsafe path"):
        ArtifactStore(backend).pull("m", tmp_path / "dst")
    assert not (tmp_path / "dst").exists() and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", ["", "../x", "a/../b", "/abs", "a b", "a//b"])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StoreError, match="invalid object name"):
        ArtifactStore(LocalBackend(tmp_path)).exists(name)


def test_a_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        ArtifactStore(LocalBackend(tmp_path)).pull("nope", tmp_path / "dst")


def test_push_repairs_a_corrupt_blob_and_verify_reports_it_until_then(tmp_path: Path) -> None:
    """A corrupt shared blob breaks every artifact that uses it; push of a good copy must not
    skip it (it only existed), and ``verify`` must name what is broken."""
    backend = CountingBackend(tmp_path / "store")
    store = ArtifactStore(backend)
    src = make_artifact(tmp_path / "src", FILES)
    store.push(src, "one")
    store.push(src, "two")  # the same blobs
    sha = sha256_file(src / "sub/c.bin")
    (tmp_path / "store" / blob_key(sha)).write_bytes(b"bit rot of the same length?")
    report = store.verify()
    now = sha256_file(tmp_path / "store" / blob_key(sha))[:12]
    expected = f"sub/c.bin: blob {sha[:12]}… is corrupt (its content hashes to {now}…)"
    assert report["one"] == report["two"] == [expected]
    with pytest.raises(IntegrityError, match="corrupt"):
        store.pull("one", tmp_path / "dst")
    backend.uploads.clear()
    store.push(src, "one")
    assert backend.uploads == [blob_key(sha)]  # only the bad blob goes up again
    assert store.verify() == {"one": [], "two": []}
    store.pull("two", tmp_path / "dst")
    assert (tmp_path / "dst/sub/c.bin").read_bytes() == FILES["sub/c.bin"]
    (tmp_path / "store" / blob_key(sha)).unlink()
    assert store.verify("two") == {"two": [f"sub/c.bin: blob {sha[:12]}… is missing"]}


def test_a_manifest_copied_to_another_name_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(LocalBackend(tmp_path / "store"))
    store.push(make_artifact(tmp_path / "src", FILES), "models/good")
    good = (tmp_path / "store" / manifest_key("models/good")).read_bytes()
    forged = tmp_path / "store" / manifest_key("models/champion")
    forged.parent.mkdir(parents=True)
    forged.write_bytes(good)
    with pytest.raises(IntegrityError, match="is that of 'models/good', not of the artifact"):
        store.pull("models/champion", tmp_path / "dst")
    assert store.verify()["models/champion"][0].startswith("models/champion: the stored manifest")


def test_a_local_manifest_may_not_list_a_path_outside_its_artifact(tmp_path: Path) -> None:
    from selfsup.store import read_manifest

    src = make_artifact(tmp_path / "src", {"a.bin": b"a"})
    manifest = json.loads((src / "manifest.json").read_text())
    for bad in ("../../etc/os-release", "/etc/os-release", "sub/../../x", "a\\..\\b"):
        manifest["files"] = {bad: sha256_file(src / "a.bin")}
        (src / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(IntegrityError, match="unsafe path"):
            read_manifest(src)
        with pytest.raises(IntegrityError, match="unsafe path"):
            read_manifest(src, verify=False)
