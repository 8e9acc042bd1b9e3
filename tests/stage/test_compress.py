"""`selfsup compress` end to end on tiny data: the exported files agree with each other and
with the manifest, the packed weights have the requested density, bad params are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.compress import stage
from selfsup.compress.export import run_onnx, run_torchscript
from selfsup.compress.size import unpack
from selfsup.config import profile_params
from selfsup.data.shards import load_split
from selfsup.models.artifact import load_encoder
from selfsup.store import read_manifest
from selfsup.train import stage as pretrain

runner = CliRunner()


@pytest.fixture
def tiny_model(tiny_dataset: Path, tmp_path: Path) -> Path:
    params = profile_params("tiny").pretrain.model_copy(update={"epochs": 1})
    pretrain.run(tiny_dataset, params=params, out=tmp_path / "encoder")
    return tmp_path / "encoder"


def test_cli_ssvi_writes_checked_exports_and_honest_sizes(
    tiny_dataset: Path, tiny_model: Path, tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(params)])
    out, metrics_file = tmp_path / "compressed", tmp_path / "compress.json"
    args = ["compress", "--params", str(params), "--model", str(tiny_model)]
    args += ["--data", str(tiny_dataset), "--out", str(out), "--metrics", str(metrics_file)]
    result = runner.invoke(app, [*args, "--method", "ssvi", "--density", "0.2"])
    assert result.exit_code == 0, result.output

    manifest = read_manifest(out, kind=stage.COMPRESSED_KIND)  # verifies every checksum
    assert set(manifest["files"]) == {
        "model.onnx",
        "model.torchscript.pt",
        "weights.packed",
        "metrics.json",
    }
    assert manifest["model"] == read_manifest(tiny_model)["content_hash"]
    assert manifest["deployable"] == "model.onnx" and manifest["params"]["density"] == 0.2
    metrics = json.loads(metrics_file.read_text())
    assert metrics == json.loads((out / "metrics.json").read_text()) | {"wall_s": metrics["wall_s"]}
    assert abs(metrics["density"] - 0.2) < 1e-3
    assert len(set(metrics["active_counts"])) == 1
    assert metrics["packed_bytes"] == (out / "weights.packed").stat().st_size
    assert metrics["packed_bytes"] < metrics["dense_packed_bytes"]

    images = load_split(tiny_dataset, "test").images[:7].float() / 255
    from_onnx, from_ts = (
        run_onnx(out / "model.onnx", images),
        run_torchscript(out / "model.torchscript.pt", images),
    )
    assert torch.allclose(from_onnx, from_ts, atol=1e-4, rtol=1e-3)
    packed = unpack((out / "weights.packed").read_bytes())
    encoder, _ = load_encoder(tiny_model)  # the source model is untouched and loads
    pruned = [packed[f"{name}.weight"] for name in ("backbone.4", "backbone.8", "backbone.12")]
    nonzero = sum(int((w != 0).sum()) for w in pruned) / sum(w.numel() for w in pruned)
    assert abs(nonzero - 0.2) < 1e-3
    assert int((packed["backbone.0.weight"] != 0).sum()) == encoder.backbone[0].weight.numel()


def test_int8_ships_torchscript_and_refuses_a_density(
    tiny_dataset: Path, tiny_model: Path, tmp_path: Path
) -> None:
    params = profile_params("tiny").compress  # the default method: ssvi+int8 at density 0.2
    assert params.method == "ssvi+int8"
    metrics = stage.run(tiny_dataset, tiny_model, params=params, out=tmp_path / "int8")
    manifest = read_manifest(tmp_path / "int8", kind=stage.COMPRESSED_KIND)
    assert set(manifest["files"]) == {"model.torchscript.pt", "weights.packed", "metrics.json"}
    assert manifest["deployable"] == "model.torchscript.pt"
    assert metrics["compression_ratio"] > 5 and 0.0 < metrics["fidelity_cosine"] <= 1.0 + 1e-6
    assert abs(metrics["density"] - 0.2) < 1e-3

    path = tmp_path / "params.yaml"
    runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(path)])
    args = [
        "compress",
        "--params",
        str(path),
        "--model",
        str(tiny_model),
        "--data",
        str(tiny_dataset),
    ]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "x"), "--method", "int8", "--density", "0.5"]
    )
    assert result.exit_code == 2 and "density" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
