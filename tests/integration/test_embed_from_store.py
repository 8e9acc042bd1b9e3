"""`selfsup embed --images s3://…` on a real Ceph RGW: the folder uploaded with `selfsup data
upload` is fetched (verified) through the store and embeds to exactly the local folder's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.config import DataParams, profile_params
from selfsup.data.remote import upload_source
from selfsup.models.artifact import save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.serve import embed
from selfsup.store.s3 import S3Settings


def test_embed_reads_an_uploaded_folder_from_the_store(
    s3_settings: S3Settings, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFSUP_S3_ENDPOINT", s3_settings.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_settings.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_settings.secret_key)
    monkeypatch.setenv("SELFSUP_CACHE_DIR", str(tmp_path / "cache"))
    params = profile_params("tiny").pretrain
    torch.manual_seed(0)
    save_encoder(tmp_path / "encoder", build_encoder(params), params)
    rng = np.random.default_rng(1)
    for name in ("b/2.png", "a/1.png", "a/0.png"):
        (tmp_path / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(
            tmp_path / "images" / name
        )
    uri = f"s3://{bucket}/sources/my-images"
    upload_source(tmp_path / "images", uri)

    local, remote = tmp_path / "local.npy", tmp_path / "remote.npy"
    embed.run(tmp_path / "encoder", str(tmp_path / "images"), params=DataParams(), out=local)
    meta = embed.run(tmp_path / "encoder", uri, params=DataParams(), out=remote)
    assert meta["images"] == uri and meta["count"] == 3
    (a, ids_a), (b, ids_b) = embed.read_embeddings(local), embed.read_embeddings(remote)
    assert ids_a == ids_b == ["a/0.png", "a/1.png", "b/2.png"]
    np.testing.assert_array_equal(a, b)
