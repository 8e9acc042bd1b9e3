"""`selfsup pretrain --method` simclr-topk, groco, gsimclr, groco+mined end to end, tiny data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import MineParams, PretrainParams, profile_params, validate_params
from selfsup.errors import ConfigError
from selfsup.mining import stage as mine
from selfsup.mining.synthetic import write_synthetic_set
from selfsup.models.artifact import load_encoder
from selfsup.train import stage as pretrain
from selfsup.train.methods import views

TRAIN = {
    "convnet_width": 4,
    "projector_hidden": 16,
    "projector_out": 8,
    "epochs": 1,
    "warmup_epochs": 0,
    "batch_size": 8,
    "max_images": 32,
    "num_workers": 0,
    "groco_k": 4,
    "gsimclr_ae_epochs": 1,
}


def _params_file(tmp_path: Path) -> Path:
    raw = profile_params("tiny").model_dump()
    raw["pretrain"].update(TRAIN)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _cli(tmp_path: Path, data: Path, method: str, *extra: str) -> dict[str, Any]:
    out, metrics = tmp_path / method, tmp_path / f"{method}.json"
    done = CliRunner().invoke(
        app,
        [
            "pretrain",
            "--params",
            str(_params_file(tmp_path)),
            "--data",
            str(data),
            "--out",
            str(out),
            "--method",
            method,
            "--metrics",
            str(metrics),
            *extra,
        ],
    )
    assert done.exit_code == 0, done.output
    assert load_encoder(out)[0] is not None
    result: dict[str, Any] = json.loads(metrics.read_text())
    assert result["method"] == method and all(
        torch.isfinite(torch.tensor(result["loss_per_epoch"]))
    )
    return result


@pytest.mark.parametrize("method", ["simclr-topk", "groco"])
def test_loss_methods_run_end_to_end(tiny_dataset: Path, tmp_path: Path, method: str) -> None:
    result = _cli(tmp_path, tiny_dataset, method)
    assert result["train_images"] == 32


def test_gsimclr_reports_nmi_and_uses_distinct_pseudo_label_batches(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    real = views.DistinctLabelBatches

    class Spy(real):  # type: ignore[misc, valid-type]
        def __iter__(self) -> Any:
            for batch in super().__iter__():
                assert len(set(self_labels(self)[batch].tolist())) == len(batch)
                seen.append(batch)
                yield batch

    def self_labels(sampler: Any) -> Any:
        labels = torch.full((32,), -1)
        for c, group in enumerate(sampler.groups):
            labels[torch.from_numpy(group)] = c
        return labels

    monkeypatch.setattr(views, "DistinctLabelBatches", Spy)
    result = _cli(tmp_path, tiny_dataset, "gsimclr")
    assert result["gsimclr_clusters"] == 8 and 0.0 <= result["gsimclr_nmi"] <= 1.0
    assert len(seen) == 32 // 8


def test_groco_with_mined_positives(tiny_dataset: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    write_synthetic_set(videos, videos=2, frames=30, size=(96, 128), objects=3, classes=4, seed=0)
    mined = tmp_path / "mined"
    mine.run(videos, params=MineParams(source="folder", contact_pairs=2), out=mined)
    result = _cli(tmp_path, tiny_dataset, "groco+mined", "--pairs", str(mined))
    assert result["mined_pairs"] > 0 and result["train_images"] == 32
    with pytest.raises(ConfigError, match="--pairs"):
        pretrain.run(
            tiny_dataset,
            params=PretrainParams(**{**TRAIN, "method": "groco+mined"}),
            out=tmp_path / "x",
        )


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"method": "groco", "groco_k": 15}, "groco_k=15 exceeds"),
        ({"method": "gsimclr", "gsimclr_clusters": 4}, "gsimclr_clusters=4 is below"),
    ],
)
def test_impossible_method_params_are_config_errors(update: dict[str, Any], message: str) -> None:
    raw = profile_params("tiny").model_dump()
    raw["pretrain"].update({**TRAIN, **update})
    with pytest.raises(ConfigError, match=message):
        validate_params(raw, "test")


@pytest.mark.parametrize("method", ["groco", "gsimclr"])
def test_runs_are_deterministic(tiny_dataset: Path, tmp_path: Path, method: str) -> None:
    """Same params, same weights: what resume relies on (G-SimCLR refits its autoencoder)."""
    params = PretrainParams(**{**TRAIN, "method": method})
    pretrain.run(tiny_dataset, params=params, out=tmp_path / "a")
    pretrain.run(tiny_dataset, params=params, out=tmp_path / "b")
    a, b = (
        load_encoder(tmp_path / "a")[0].state_dict(),
        load_encoder(tmp_path / "b")[0].state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
