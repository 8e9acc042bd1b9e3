"""A pipeline task with several GPUs trains on all of them: ``run_on_every_gpu`` starts the real
``torchrun`` over ``selfsup pretrain`` with one rank per visible GPU. Here the GPU count is
faked to 2 in this process only; the two ranks then run on the CPU (gloo), as DDP tests do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from selfsup.config import PretrainParams
from selfsup.models.artifact import load_encoder
from selfsup.train import launch
from selfsup.train import stage as pretrain

PARAMS = PretrainParams(
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    epochs=2,
    warmup_epochs=0,
    batch_size=8,  # global: 4 per rank
    max_images=32,
    num_workers=0,
    device="cpu",
)


def test_two_visible_gpus_train_under_torchrun_with_two_ranks(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    metrics = launch.run_on_every_gpu(tiny_dataset, params=PARAMS, out=tmp_path / "model")
    assert metrics["world_size"] == 2 and len(metrics["loss_per_epoch"]) == 2
    assert load_encoder(tmp_path / "model")[0] is not None


def test_one_gpu_or_none_is_the_stage_itself(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    calls: list[Path] = []
    real = pretrain.run

    def spy(dataset: Path, *args: object, **kwargs: object) -> dict[str, object]:
        calls.append(dataset)
        return real(dataset, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pretrain, "run", spy)
    metrics = launch.run_on_every_gpu(tiny_dataset, params=PARAMS, out=tmp_path / "model")
    assert calls == [tiny_dataset] and metrics["world_size"] == 1


def test_a_failed_rank_is_one_clear_error(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    odd = PARAMS.model_copy(update={"batch_size": 9})  # not divisible by the 2 ranks
    with pytest.raises(launch.LaunchError, match="on 2 GPUs failed"):
        launch.run_on_every_gpu(tiny_dataset, params=odd, out=tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_the_stage_options_become_flags_the_real_cli_parses_back() -> None:
    import typer.main

    from selfsup.cli import app

    options = {"checkpoints": Path("/c"), "resume": True, "mirror": "s3://b/ckpt"}
    command = typer.main.get_command(app).commands["pretrain"]  # type: ignore[attr-defined]
    required = ["--data", "d", "--out", "o"]
    parsed = command.make_context("pretrain", [*required, *launch._flags(options)]).params
    assert parsed["checkpoints"] == Path("/c") and parsed["resume"] is True
    assert parsed["checkpoint_mirror"] == "s3://b/ckpt"
    assert launch._flags({"resume": False, "mirror": None}) == []
    with pytest.raises(TypeError, match="unknown"):
        launch._flags({"epochs": 3})
