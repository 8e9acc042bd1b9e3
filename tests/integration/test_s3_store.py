"""The artifact store against a real Ceph RGW: round trip with multipart, bad credentials, a
killed upload, a corrupted object, and bucket versioning keeping the previous model."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from selfsup.errors import IntegrityError, StoreError
from selfsup.store import sha256_file, write_manifest
from selfsup.store.artifacts import ArtifactStore, blob_key
from selfsup.store.backend import Progress
from selfsup.store.retry import RetryPolicy
from selfsup.store.s3 import PART_SIZE, S3Backend, S3Settings

pytestmark = pytest.mark.integration


def make_artifact(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    write_manifest(root, "test", {})
    return root


class DyingS3(S3Backend):
    """An S3 backend whose process 'dies' (raises) after ``fail_after`` blob uploads."""

    fail_after: int | None = None
    uploads: int = 0

    def put_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        if self.fail_after is not None and self.uploads >= self.fail_after:
            raise KeyboardInterrupt("killed midway")
        super().put_file(key, path, progress)
        self.uploads += 1


def test_round_trip_uses_multipart_for_large_files(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    big = os.urandom(PART_SIZE * 2 + 12345)
    src = make_artifact(tmp_path / "src", {"weights.bin": big, "meta/info.txt": b"hello"})
    backend = S3Backend(bucket, "team/a", s3_settings)
    store = ArtifactStore(backend)
    store.push(src, "models/m1")
    stat = backend.client.stat_object(
        bucket, "team/a/" + blob_key(sha256_file(src / "weights.bin"))
    )
    assert stat.etag is not None and stat.etag.endswith("-3")  # a 3-part multipart upload
    store.pull("models/m1", tmp_path / "dst")
    assert (tmp_path / "dst/weights.bin").read_bytes() == big
    assert (tmp_path / "dst/meta/info.txt").read_bytes() == b"hello"
    assert store.names() == ["models/m1"]


def test_wrong_credentials_are_a_clear_error(s3_settings: S3Settings, bucket: str) -> None:
    wrong = S3Settings(s3_settings.endpoint, s3_settings.access_key, "not-the-secret")
    store = ArtifactStore(S3Backend(bucket, "", wrong, RetryPolicy(2, 0.01)))
    with pytest.raises(StoreError, match=r"rejected the credentials \(AccessDenied\)"):
        store.exists("x")  # a HEAD request: the error has no body, hence no finer code
    with pytest.raises(StoreError, match=r"rejected the credentials \(SignatureDoesNotMatch\)"):
        store.manifest("x")


def test_killed_upload_publishes_nothing_and_a_rerun_completes(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    files = {f"f{i}.bin": os.urandom(50_000 + i) for i in range(4)}
    src = make_artifact(tmp_path / "src", files)
    backend = DyingS3(bucket, "", s3_settings)
    backend.fail_after = 2
    store = ArtifactStore(backend, workers=1)
    with pytest.raises(KeyboardInterrupt):
        store.push(src, "datasets/d")
    assert not store.exists("datasets/d") and store.names() == []
    assert len(backend.list_keys("blobs")) == 2  # blobs only: invisible without a manifest
    backend.fail_after, backend.uploads = None, 0
    store.push(src, "datasets/d")
    assert backend.uploads == 2  # only the missing blobs
    store.pull("datasets/d", tmp_path / "dst")
    assert all((tmp_path / "dst" / k).read_bytes() == v for k, v in files.items())


def test_a_corrupted_object_is_refused_on_download(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    src = make_artifact(tmp_path / "src", {"w.bin": b"w" * 100_000})
    backend = S3Backend(bucket, "", s3_settings)
    store = ArtifactStore(backend)
    store.push(src, "models/m")
    key = blob_key(sha256_file(src / "w.bin"))
    backend.client.put_object(bucket, key, io.BytesIO(b"x" * 100_000), 100_000)  # bit rot
    with pytest.raises(IntegrityError, match="corrupt"):
        store.pull("models/m", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


def test_push_checks_each_skipped_blobs_etag_and_repairs_a_corrupt_one(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    """Same-size corruption of a single-part and of a multipart blob: the ETag (the MD5 RGW
    computed of what it stores) no longer matches, so push uploads those two again; intact
    blobs, multipart included, are skipped."""
    big = os.urandom(PART_SIZE + 4321)
    src = make_artifact(tmp_path / "src", {"big.bin": big, "w.bin": b"w" * 100_000, "ok": b"k"})
    backend = DyingS3(bucket, "", s3_settings)
    store = ArtifactStore(backend)
    store.push(src, "models/m")
    backend.uploads = 0
    store.push(src, "models/m")
    assert backend.uploads == 0  # nothing re-sent: every ETag matched, the multipart one too
    for rel, rot in (("w.bin", b"x" * 100_000), ("big.bin", os.urandom(len(big)))):
        key = blob_key(sha256_file(src / rel))
        backend.client.put_object(bucket, key, io.BytesIO(rot), len(rot))
    report = store.verify()
    assert [p.split(":")[0] for p in report["models/m"]] == ["big.bin", "w.bin"]
    store.push(src, "models/m")
    assert backend.uploads == 2
    assert store.verify() == {"models/m": []}
    store.pull("models/m", tmp_path / "dst")
    assert (tmp_path / "dst/big.bin").read_bytes() == big


def test_versioning_keeps_the_previous_model_after_an_overwrite(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    store = ArtifactStore(S3Backend(bucket, "", s3_settings))
    store.push(make_artifact(tmp_path / "v1", {"w.bin": b"first"}), "models/champion")
    store.push(make_artifact(tmp_path / "v2", {"w.bin": b"second"}), "models/champion")
    versions = store.versions("models/champion")
    assert len(versions) == 2
    store.pull("models/champion", tmp_path / "latest")
    store.pull("models/champion", tmp_path / "previous", version_id=versions[1])
    assert (tmp_path / "latest/w.bin").read_bytes() == b"second"
    assert (tmp_path / "previous/w.bin").read_bytes() == b"first"


def test_a_missing_bucket_or_object_is_a_clear_error(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="not found"):
        ArtifactStore(S3Backend(bucket, "", s3_settings)).pull("models/none", tmp_path / "d")
    with pytest.raises(StoreError, match="not found"):
        ArtifactStore(S3Backend("no-such-bucket-x", "", s3_settings)).pull("m", tmp_path / "d")


def test_a_killed_multipart_upload_is_resumed_not_resent_and_left_nothing(
    s3_settings: S3Settings, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = os.urandom(PART_SIZE * 3 + 999)  # 4 parts
    src = make_artifact(tmp_path / "src", {"big.bin": big})
    backend = S3Backend(bucket, "", s3_settings)
    real_upload_part = backend.client._upload_part
    sent: list[int] = []

    def dies_after_two(*args: object) -> str:
        if len(sent) == 2:
            raise BaseException("SIGKILL")
        sent.append(int(args[-1]))  # type: ignore[call-overload]
        return str(real_upload_part(*args))  # type: ignore[arg-type]

    backend.client._upload_part = dies_after_two  # type: ignore[method-assign]
    store = ArtifactStore(backend, workers=1)
    with pytest.raises(BaseException, match="SIGKILL"):
        store.push(src, "models/big")
    pending = backend.client._list_multipart_uploads(bucket).uploads
    assert len(pending) == 1 and len(sent) == 2  # the killed upload's parts are still there

    resumed = S3Backend(bucket, "", s3_settings)
    real = resumed.client._upload_part
    again: list[int] = []

    def counting(*args: object) -> str:
        again.append(int(args[-1]))  # type: ignore[call-overload]
        return str(real(*args))  # type: ignore[arg-type]

    resumed.client._upload_part = counting  # type: ignore[method-assign]
    caplog.set_level("INFO", logger="selfsup.store")
    ArtifactStore(resumed).push(src, "models/big")
    assert sorted(again) == sorted({1, 2, 3, 4} - set(sent))  # only the missing parts
    assert "resumed: 2 of 4 parts were already there" in caplog.text
    assert backend.client._list_multipart_uploads(bucket).uploads == []
    ArtifactStore(resumed).pull("models/big", tmp_path / "dst")  # every sha256 checked
    assert (tmp_path / "dst/big.bin").read_bytes() == big


def test_new_buckets_abort_unfinished_uploads_after_a_day(
    s3_settings: S3Settings, bucket: str
) -> None:
    """What nobody resumes the server aborts: the lifecycle rule RGW stores for the bucket."""
    (rule,) = S3Backend(bucket, "", s3_settings).client.get_bucket_lifecycle(bucket).rules
    assert rule.rule_id == "abort-unfinished-uploads"
    assert rule.abort_incomplete_multipart_upload.days_after_initiation == 1
