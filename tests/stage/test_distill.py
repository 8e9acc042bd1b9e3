"""`distill` end to end on tiny data, and `pretrain --method distilled` on its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import profile_params
from selfsup.distill import stage
from selfsup.distill.format import load_distilled
from selfsup.errors import ConfigError
from selfsup.models import build_encoder
from selfsup.models.artifact import load_encoder, save_encoder
from selfsup.store import read_manifest
from selfsup.train import stage as pretrain

runner = CliRunner()
TINY = profile_params("tiny")


@pytest.fixture
def teacher(tmp_path: Path) -> Path:
    """A (random-init) selfsup encoder directory: the teacher only has to map images to targets."""
    torch.manual_seed(0)
    params = TINY.pretrain
    save_encoder(tmp_path / "teacher", build_encoder(params), params, data="test")
    return tmp_path / "teacher"


def test_distill_writes_images_targets_manifest_then_pretrains(
    tiny_dataset: Path, teacher: Path, tmp_path: Path
) -> None:
    params = TINY.distill.model_copy(update={"outer_steps": 6})
    metrics = stage.run(tiny_dataset, teacher, params=params, out=tmp_path / "distilled")
    images, targets, manifest = load_distilled(tmp_path / "distilled")
    teacher_width = load_encoder(teacher)[0].out_dim
    assert images.shape == (params.num_images, 3, 32, 32)
    assert targets.shape == (params.num_images, teacher_width)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert manifest["teacher"] == read_manifest(teacher)["content_hash"]
    assert manifest["data"] == read_manifest(tiny_dataset)["content_hash"]
    assert set(manifest["files"]) == {
        "images.pt",
        "targets.pt",
        "preview.png",
        "metrics.json",
        "loss.csv",
    }
    assert len((tmp_path / "distilled" / "loss.csv").read_text().splitlines()) == 1 + 6
    assert metrics["pool_resets"] >= 1  # T=3 in the tiny profile: members cycle during 6 steps

    train = TINY.pretrain.model_copy(update={"method": "distilled", "epochs": 2})
    result = pretrain.run(tmp_path / "distilled", params=train, out=tmp_path / "student")
    assert result["train_images"] == params.num_images and len(result["loss_per_epoch"]) == 2
    student, student_manifest = load_encoder(tmp_path / "student")
    assert student_manifest["data"] == manifest["content_hash"]
    assert student.out_dim == build_encoder(TINY.pretrain).out_dim


def test_too_many_distilled_images_is_a_config_error(
    tiny_dataset: Path, teacher: Path, tmp_path: Path
) -> None:
    params = TINY.distill.model_copy(update={"num_images": 1_000})
    with pytest.raises(ConfigError, match="num_images"):
        stage.run(tiny_dataset, teacher, params=params, out=tmp_path / "distilled")
    assert not (tmp_path / "distilled").exists()


def test_cli_distill_and_pretrain_distilled(
    tiny_dataset: Path, teacher: Path, tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    assert runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(params)])
    out, report = tmp_path / "distilled", tmp_path / "distill.json"
    result = runner.invoke(
        app,
        [
            "distill",
            "--params",
            str(params),
            "--model",
            str(teacher),
            "--data",
            str(tiny_dataset),
            "--out",
            str(out),
            "--metrics",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["num_images"] == TINY.distill.num_images
    result = runner.invoke(
        app,
        [
            "pretrain",
            "--params",
            str(params),
            "--method",
            "distilled",
            "--data",
            str(out),
            "--out",
            str(tmp_path / "student"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_encoder(tmp_path / "student")[1]["params"]["method"] == "distilled"
    # A prepared dataset is not a distilled one: a clear error, not a traceback.
    result = runner.invoke(
        app,
        [
            "pretrain",
            "--params",
            str(params),
            "--method",
            "distilled",
            "--data",
            str(tiny_dataset),
            "--out",
            str(tmp_path / "wrong"),
        ],
    )
    assert result.exit_code == 2 and "distilled" in result.output, result.output
