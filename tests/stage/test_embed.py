"""`selfsup embed`: the rows are the encoder applied to each decoded image (an explicit loop over
the files, decoded by PIL: an independent oracle), in the order of the ids file; an unreadable
image is one clear error and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import DataParams, profile_params
from selfsup.errors import DataError
from selfsup.models.artifact import load_encoder, save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.serve import embed

runner = CliRunner()
# Relative paths in the folder's sorted order (nested folders included, hidden ones skipped).
FILES = ["cat/001.png", "cat/002.png", "cat/sub/003.png", "dog/a.png", "dog/b.png"]


@pytest.fixture
def encoder_dir(tmp_path: Path) -> Path:
    params = profile_params("tiny").pretrain
    torch.manual_seed(3)
    save_encoder(tmp_path / "encoder", build_encoder(params), params)
    return tmp_path / "encoder"


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in [*reversed(FILES), ".hidden/x.png"]:  # written out of order on purpose
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
    return root


def oracle(encoder_dir: Path, root: Path) -> np.ndarray:
    """One image at a time: PIL decode, [0,1] floats, the encoder on a batch of one."""
    encoder, _ = load_encoder(encoder_dir)
    rows = []
    for name in FILES:
        pixels = np.asarray(Image.open(root / name).convert("RGB"), dtype=np.float32) / 255.0
        x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
        with torch.no_grad():
            rows.append(encoder(x)[0].numpy())
    return np.stack(rows)


def test_embed_writes_the_encoders_features_with_ids_in_file_order(
    encoder_dir: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "emb.npy"
    args = ["embed", "--model", str(encoder_dir), "--images", str(images), "--out", str(out)]
    result = runner.invoke(app, [*args, "--batch-size", "2"])  # batches of 2: 2 + 2 + 1
    assert result.exit_code == 0, result.output
    assert "embedded 5 images (64-d)" in result.output

    features, ids = embed.read_embeddings(out)
    assert ids == FILES
    assert features.dtype == np.float32 and features.shape == (5, 64)
    np.testing.assert_allclose(features, oracle(encoder_dir, images), rtol=1e-5, atol=1e-5)
    meta = json.loads((tmp_path / "out" / "emb.json").read_text())
    assert meta["count"] == 5 and meta["ids"] == "emb.ids.txt"
    assert meta["model"] == json.loads((encoder_dir / "manifest.json").read_text())["content_hash"]


def test_a_corrupt_jpeg_is_one_clear_error_and_nothing_is_written(
    encoder_dir: Path, images: Path, tmp_path: Path
) -> None:
    good = (images / "dog/a.png").read_bytes()
    Image.open(images / "dog/a.png").convert("RGB").save(images / "dog/c.jpg", format="JPEG")
    jpeg = (images / "dog/c.jpg").read_bytes()
    (images / "dog/c.jpg").write_bytes(jpeg[: len(jpeg) // 3])  # truncated mid-scan
    (images / "dog/d.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" + good[:10])
    out = tmp_path / "emb.npy"
    with pytest.raises(DataError, match=r"dog/c\.jpg cannot be decoded .*no embeddings"):
        embed.run(encoder_dir, str(images), params=DataParams(), out=out)
    assert not out.exists() and not (tmp_path / "emb.ids.txt").exists()

    args = ["embed", "--model", str(encoder_dir), "--images", str(images), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "error: image" in result.output and "c.jpg cannot be decoded" in result.output


def test_embed_refuses_other_outputs_and_applies_the_size_limits(
    encoder_dir: Path, images: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match=r"\.npy"):
        embed.run(encoder_dir, str(images), params=DataParams(), out=tmp_path / "emb.parquet")
    small = DataParams(max_image_bytes=64)
    with pytest.raises(DataError, match=r"over data\.max_image_bytes=64"):
        embed.run(encoder_dir, str(images), params=small, out=tmp_path / "emb.npy")
    with pytest.raises(DataError, match="does not exist"):
        embed.run(encoder_dir, str(tmp_path / "none"), params=DataParams(), out=tmp_path / "e.npy")
