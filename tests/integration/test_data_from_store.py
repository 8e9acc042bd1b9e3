"""Raw data from the store on a real Ceph RGW: `selfsup data upload` seeds it, the pipeline's
data task reads ``s3://…`` and builds the same dataset (same content hash) as the local source;
corruption and a missing upload are one clear error."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ArchiveBuilder, encode_image
from fixtures.kfp_executor import execute

from selfsup.config import DataParams, Params
from selfsup.data import stage
from selfsup.data.remote import SOURCE_KIND, upload_source
from selfsup.data.shards import read_dataset_manifest
from selfsup.errors import DataError, IntegrityError
from selfsup.pipeline.dags import section_arguments
from selfsup.store.artifacts import blob_key
from selfsup.store.s3 import S3Backend, S3Settings

# The installed console script, as a user runs it.
SELFSUP = str(Path(sys.executable).parent / "selfsup")
SUBSET = {"train_per_class": 20, "test_per_class": 10}


@pytest.fixture
def s3_env(
    s3_settings: S3Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The S3 store's settings in the environment, as a pod gets them; a fresh local cache."""
    env = {
        "SELFSUP_S3_ENDPOINT": s3_settings.endpoint,
        "AWS_ACCESS_KEY_ID": s3_settings.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_settings.secret_key,
        "SELFSUP_CACHE_DIR": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_data_task_reads_the_cifar10_archive_from_the_store_with_the_local_hash(
    s3_env: dict[str, str], bucket: str, cifar10_archive: Path, tmp_path: Path
) -> None:
    uri = f"s3://{bucket}/sources/cifar10-jpg"
    upload = subprocess.run(
        [SELFSUP, "data", "upload", str(cifar10_archive), uri],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert upload.returncode == 0, upload.stderr
    assert f"as {uri} (1 files, archive)" in upload.stdout

    local = DataParams(source="cifar10-archive", archive=str(cifar10_archive), **SUBSET)
    stage.run(params=local, out=tmp_path / "local")
    remote = local.model_copy(update={"archive": uri})
    data_params = section_arguments(Params(data=remote))["data"]
    execute("data", tmp_path / "task", data_params=data_params)

    expected = read_dataset_manifest(tmp_path / "local")
    got = read_dataset_manifest(tmp_path / "task" / "dataset")  # every shard's sha256 checked
    assert got["content_hash"] == expected["content_hash"]
    assert (tmp_path / "task" / "content_hash").read_text() == expected["content_hash"]
    assert got["origin"] == f"archive {uri}"
    assert got["splits"] == {"train": 200, "test": 100}


def test_a_folder_round_trips_and_the_cache_is_reused_only_while_intact(
    s3_env: dict[str, str], bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "photos"
    for split, count in (("train", 6), ("test", 3)):
        for c in range(2):
            (folder / split / f"class{c}").mkdir(parents=True)
            for i in range(count):
                image = encode_image((200 * c, 90, 40), (40, 30), 100 * c + i, "JPEG")
                (folder / split / f"class{c}" / f"{i}.jpg").write_bytes(image)
    uri = f"s3://{bucket}/sources/photos"
    manifest = upload_source(folder, uri)
    assert manifest["kind"] == SOURCE_KIND and len(manifest["files"]) == 18

    local = DataParams(source="folder", folder=str(folder), image_size=16)
    expected = read_dataset_manifest(_prepare(local, tmp_path / "local"))["content_hash"]
    remote = local.model_copy(update={"folder": uri})
    caplog.set_level(logging.INFO, logger="selfsup.data.remote")
    assert read_dataset_manifest(_prepare(remote, tmp_path / "r1"))["content_hash"] == expected
    assert any("pulling 18 files" in r.getMessage() for r in caplog.records)

    caplog.clear()
    _prepare(remote, tmp_path / "r2")
    assert any("is intact" in r.getMessage() for r in caplog.records)

    # a damaged cached copy is pulled again, not used
    cached = next((tmp_path / "cache" / "sources").glob("*/images/train/class0/0.jpg"))
    cached.write_bytes(b"damaged")
    caplog.clear()
    assert read_dataset_manifest(_prepare(remote, tmp_path / "r3"))["content_hash"] == expected
    assert any("pulling 18 files" in r.getMessage() for r in caplog.records)


def _prepare(params: DataParams, out: Path) -> Path:
    stage.run(params=params, out=out)
    return out


def test_a_corrupt_stored_blob_is_refused_and_a_missing_upload_names_the_command(
    s3_env: dict[str, str],
    s3_settings: S3Settings,
    bucket: str,
    make_archive: ArchiveBuilder,
    tmp_path: Path,
) -> None:
    archive = make_archive()
    uri = f"s3://{bucket}/sources/mini"
    manifest = upload_source(archive, uri)
    (sha,) = manifest["files"].values()
    S3Backend(bucket, "sources", s3_settings).put_bytes(blob_key(sha), b"bit rot")
    params = DataParams(source="cifar10-archive", archive=uri)
    with pytest.raises(IntegrityError, match="corrupt"):
        stage.run(params=params, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()

    missing = params.model_copy(update={"archive": f"s3://{bucket}/sources/never-uploaded"})
    with pytest.raises(DataError, match=r"selfsup data upload PATH s3://"):
        stage.run(params=missing, out=tmp_path / "out")

    as_folder = DataParams(source="folder", folder=uri)
    with pytest.raises(DataError, match=r"use data\.archive"):
        stage.run(params=as_folder, out=tmp_path / "out")


def test_the_cli_reports_a_bad_uri_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.tar.gz").write_bytes(b"x")
    result = subprocess.run(
        [SELFSUP, "data", "upload", str(tmp_path / "a.tar.gz"), "s3://b"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: 's3://b': a data source in the store is s3://bucket[/prefix]/NAME, e.g. "
        "s3://selfsup/sources/cifar10-jpg"
    ]
    assert result.stdout == ""
