"""`pretrain` end to end on small data: outputs, resume equivalence, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import kill_after_first_epoch

from selfsup.config import AugmentParams, PretrainParams, ProgressiveResize
from selfsup.errors import ConfigError
from selfsup.models.artifact import load_encoder
from selfsup.store import read_manifest
from selfsup.train import stage as pretrain

PARAMS = PretrainParams(
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    epochs=3,
    warmup_epochs=1,
    batch_size=8,
    max_images=32,
    num_workers=0,
)


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    encoder, _ = load_encoder(model_dir)
    return encoder.state_dict()


def test_writes_model_metrics_and_manifest(tiny_dataset: Path, tmp_path: Path) -> None:
    metrics = pretrain.run(tiny_dataset, params=PARAMS, out=tmp_path / "model")
    assert len(metrics["loss_per_epoch"]) == 3
    assert all(torch.isfinite(torch.tensor(metrics["loss_per_epoch"])))
    assert metrics["mean_images_per_second"] > 0 and metrics["train_images"] == 32
    manifest = read_manifest(tmp_path / "model", kind="encoder")
    assert manifest["data"] == read_manifest(tiny_dataset)["content_hash"]
    assert set(manifest["files"]) == {"encoder.pt", "metrics.json", "loss.csv"}
    key = pretrain.run_key(PARAMS, manifest["data"])
    assert (tmp_path / "model.ckpt" / key / "last.pt").is_file()
    assert (tmp_path / "model" / "loss.csv").read_text().splitlines()[
        0
    ] == "epoch,loss,images_per_second"


SMALL_FIRST = ProgressiveResize(min_size=16, hold=0.2, ramp=0.4)  # 16, 20, then 32 px


@pytest.mark.parametrize(
    ("workers", "backend", "ramp"),
    [
        (0, "torchvision", None),
        (1, "torchvision", None),
        (1, "kornia", None),
        (0, "kornia", SMALL_FIRST),
        (0, "kornia-device", SMALL_FIRST),
    ],
)
def test_killed_run_resumes_to_identical_weights(
    tiny_dataset: Path,
    tmp_path: Path,
    workers: int,
    backend: str,
    ramp: ProgressiveResize | None,
) -> None:
    placement = "device" if backend.endswith("-device") else "loader"
    augment = AugmentParams(backend=backend.removesuffix("-device"), placement=placement)  # type: ignore[arg-type]
    update = {"num_workers": workers, "augment": augment, "progressive_resize": ramp}
    params = PARAMS.model_copy(update=update)
    pretrain.run(tiny_dataset, params=params, out=tmp_path / "straight")

    kill_after_first_epoch(
        lambda: pretrain.run(tiny_dataset, params=params, out=tmp_path / "resumed")
    )
    assert not (tmp_path / "resumed").exists(), "no model directory from a killed run"
    metrics = pretrain.run(tiny_dataset, params=params, out=tmp_path / "resumed", resume=True)

    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    assert len(metrics["loss_per_epoch"]) == 3


def test_resume_never_continues_a_run_of_other_params(tiny_dataset: Path, tmp_path: Path) -> None:
    short = PARAMS.model_copy(update={"epochs": 1, "warmup_epochs": 0})
    pretrain.run(tiny_dataset, params=short, out=tmp_path / "m")
    metrics = pretrain.run(tiny_dataset, params=PARAMS, out=tmp_path / "m", resume=True)
    assert len(metrics["loss_per_epoch"]) == 3  # started afresh: three epochs run here
    fresh = pretrain.run(tiny_dataset, params=PARAMS, out=tmp_path / "fresh")
    assert metrics["loss_per_epoch"] == fresh["loss_per_epoch"]
    # Both runs' checkpoints stay: a finished run never deletes another run key's.
    keys = sorted(p.name for p in (tmp_path / "m.ckpt").iterdir())
    data = read_manifest(tiny_dataset)["content_hash"]
    assert keys == sorted(pretrain.run_key(p, data) for p in (short, PARAMS))


def test_batch_larger_than_data_is_a_clear_error(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        pretrain.run(
            tiny_dataset, params=PARAMS.model_copy(update={"batch_size": 64}), out=tmp_path / "m"
        )


def test_training_lowers_the_loss(tiny_dataset: Path, tmp_path: Path) -> None:
    """Training lowers the SimCLR loss: the mean of the last two epochs is below that of the first
    two (an epoch is 3 batches of 16 noise images, so one epoch's loss alone is noisy)."""
    params = PARAMS.model_copy(update={"epochs": 6, "max_images": 48, "lr": 5e-3})
    metrics = pretrain.run(tiny_dataset, params=params, out=tmp_path / "m")
    losses = metrics["loss_per_epoch"]
    assert sum(losses[-2:]) < sum(losses[:2]), losses
