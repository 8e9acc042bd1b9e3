"""`pretrain.method: byol` through the real method object and the stage: a training step leaves the
target network without gradients and moves it by exactly the EMA of the stepped online weights;
the CLI trains it; a run killed after epoch 1 resumes to the same encoder *and* target."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import kill_after_first_epoch

from selfsup.config import PretrainParams
from selfsup.models import build_encoder
from selfsup.models.artifact import load_encoder
from selfsup.train import optim
from selfsup.train import stage as pretrain
from selfsup.train.checkpoint import load_checkpoint
from selfsup.train.methods import METHODS, Context
from selfsup.train.methods.byol import Byol, target_momentum

PARAMS = PretrainParams(
    method="byol",
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    byol_predictor_hidden=12,
    epochs=2,
    warmup_epochs=0,
    batch_size=8,
    max_images=24,
    num_workers=0,
)


def test_registry_names_byol() -> None:
    assert METHODS["byol"] is Byol


def test_one_step_trains_online_only_and_moves_the_target_by_ema(tiny_dataset: Path) -> None:
    method = Byol(Context(PARAMS), tiny_dataset, None)
    torch.manual_seed(0)
    model = method.build(build_encoder(PARAMS))
    optimizer = optim.optimizer(PARAMS, model.net)
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    target = method.target
    assert not any(id(p) in trained for p in target.parameters()), "target not optimised"
    assert all(id(p) in trained for p in model.state["predictor"].parameters())
    before = [t.detach().double().clone() for t in target.parameters()]
    online_before = [t.detach().clone() for t in method.online.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(online_before, target.parameters(), strict=True))

    loss, images = method.loss(model.net, next(iter(method.batches(0))))
    loss.backward()  # type: ignore[no-untyped-call]
    assert images == PARAMS.batch_size and 0 <= float(loss.detach()) <= 8
    assert all(p.grad is None for p in target.parameters()), "no gradient reaches the target"
    assert all(p.grad is not None for p in model.net.parameters())
    optimizer.step()
    method.after_step(0)

    tau = target_momentum(0, method.total_steps, PARAMS.byol_momentum_base)
    assert tau == pytest.approx(PARAMS.byol_momentum_base)
    moved = 0
    online = method.online.parameters()
    for old, new, theta in zip(before, target.parameters(), online, strict=True):
        expected = tau * old + (1 - tau) * theta.detach().double()
        torch.testing.assert_close(new.detach().double(), expected, rtol=1e-6, atol=1e-7)
        moved += int(not torch.equal(new.detach().double(), old))
    assert moved > 0, "the online step moved the target"


def test_killed_byol_run_resumes_to_identical_encoder_and_target(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    metrics = pretrain.run(tiny_dataset, params=PARAMS, out=tmp_path / "straight")
    assert metrics["method"] == "byol" and len(metrics["loss_per_epoch"]) == 2
    kill_after_first_epoch(
        lambda: pretrain.run(tiny_dataset, params=PARAMS, out=tmp_path / "resumed")
    )
    resumed = pretrain.run(tiny_dataset, params=PARAMS, out=tmp_path / "resumed", resume=True)
    assert resumed["loss_per_epoch"] == metrics["loss_per_epoch"]

    a, b = (load_encoder(tmp_path / name)[0].state_dict() for name in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    states = [
        load_checkpoint(next((tmp_path / f"{name}.ckpt").iterdir()))
        for name in ("straight", "resumed")
    ]
    for part in ("target", "predictor"):
        first, second = states[0][part], states[1][part]
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first), part
