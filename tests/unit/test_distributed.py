"""DDP on CPU with 2 gloo processes: gradients equal one process on the concatenated batch;
pretrain under torchrun's environment writes from rank 0 only and resumes to identical weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from conftest import random_dataset
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import Params, PretrainParams, render_params
from selfsup.errors import ConfigError
from selfsup.losses import nt_xent
from selfsup.mining.graph import Graph, write_graph
from selfsup.models import ProjectionHead, artifact, build_encoder
from selfsup.models.artifact import load_encoder
from selfsup.train import distributed
from selfsup.train import stage as pretrain
from selfsup.train.methods import SimclrNet, byol
from selfsup.train.methods import mined as mined_methods

WORLD = 2
LOCAL_BATCH = 6
PARAMS = PretrainParams(
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    epochs=3,
    warmup_epochs=1,
    batch_size=8,  # global: 4 per rank
    max_images=32,
    num_workers=0,
)


def _single_threaded(rank: int, fn: Any, *args: Any) -> None:
    """In a forked child: one intra-op thread before any torch work. A fork copies the parent's
    OpenMP thread-pool state but not its threads; a child entering a parallel region with that
    pool can hang (the parent — a pytest worker — has usually run torch on several threads by
    now). DataLoader workers do the same."""
    torch.set_num_threads(1)
    fn(rank, *args)


def _launch(fn: Any, *args: Any) -> None:
    """Run ``fn(rank, *args)`` in WORLD processes, forked (the children start with the imports
    of this one: seconds instead of a fresh interpreter importing torch each)."""
    mp.start_processes(
        _single_threaded, args=(fn, *args), nprocs=WORLD, join=True, start_method="fork"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _torchrun_env(rank: int, port: int) -> None:
    """What torchrun sets for each process."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )


def _net() -> SimclrNet:
    torch.manual_seed(0)
    encoder = build_encoder(PARAMS)
    net = SimclrNet(encoder, ProjectionHead(encoder.out_dim, 16, 8))
    # Eval-mode BatchNorm (running statistics) makes the forward independent of how the batch
    # is split; with batch statistics each rank normalises its own share (see docs).
    return net.eval()


def _global_views() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    shape = (WORLD * LOCAL_BATCH, 3, 32, 32)
    return torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)


def _grads(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def _ddp_step(rank: int, port: int, out: str) -> None:
    """One forward/backward of rank ``rank``'s share of the global batch, as pretrain does."""
    _torchrun_env(rank, port)
    job = distributed.from_env()
    with distributed.process_group(job, torch.device("cpu")):
        net = _net()
        model = distributed.wrap(net, job, torch.device("cpu"), sync_batchnorm=False)
        v1, v2 = _global_views()
        share = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        z1, z2 = model(torch.cat([v1[share], v2[share]])).chunk(2)
        loss = nt_xent(distributed.gather(z1), distributed.gather(z2), temperature=0.2)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.save({"loss": loss.detach(), "grads": _grads(net)}, f"{out}/rank{rank}.pt")


def test_ddp_gradients_equal_single_process_on_concatenated_batch(tmp_path: Path) -> None:
    _launch(_ddp_step, _free_port(), str(tmp_path))

    net = _net()
    v1, v2 = _global_views()
    z1, z2 = net(torch.cat([v1, v2])).chunk(2)
    loss = nt_xent(z1, z2, temperature=0.2)
    loss.backward()  # type: ignore[no-untyped-call]
    single = _grads(net)

    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        torch.testing.assert_close(got["loss"], loss.detach())
        assert got["grads"].keys() == single.keys()
        for name, grad in single.items():
            torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-6)

    # Control: the mean of per-rank losses (no gather) is a different objective.
    net = _net()
    halves = [slice(r * LOCAL_BATCH, (r + 1) * LOCAL_BATCH) for r in range(WORLD)]
    local = [nt_xent(*net(torch.cat([v1[s], v2[s]])).chunk(2), temperature=0.2) for s in halves]
    torch.stack(local).mean().backward()  # type: ignore[no-untyped-call]
    naive = _grads(net)
    assert any(not torch.allclose(naive[n], single[n], atol=1e-5) for n in single)


def _pretrain(rank: int, port: int, data: str, out: str, die_after_first: bool) -> None:
    """``selfsup pretrain --resume`` (the CLI) in one rank of a 2-process job; records which
    rank wrote what and the metrics ``pretrain.run`` returned on it."""
    _torchrun_env(rank, port)
    writes: list[str] = []
    results: list[dict[str, Any]] = []
    real_save, real_directory, real_run = (
        pretrain.save_checkpoint,
        artifact.atomic_directory,
        pretrain.run,
    )

    def save(directory: Path, state: dict[str, Any]) -> Path:
        writes.append("checkpoint")
        return real_save(directory, state)

    def directory(path: Path, kind: str | None = None) -> Any:
        writes.append("model")
        return real_directory(path, kind)

    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        results.append(real_run(*args, **kwargs))
        return results[-1]

    pretrain.save_checkpoint, artifact.atomic_directory = save, directory  # type: ignore[assignment]
    pretrain.run = run  # type: ignore[assignment]
    if die_after_first:  # every rank is killed once epoch 1 and its checkpoint are done
        real_epoch, calls = pretrain._train_epoch, []

        def epoch(*args: Any, **kwargs: Any) -> tuple[float, int]:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("simulated kill after epoch 1")  # not SIGINT: spawn ignores it
            return real_epoch(*args, **kwargs)

        pretrain._train_epoch = epoch  # type: ignore[assignment]
    yaml = Path(f"{out}.params.yaml")
    cli = ["pretrain", "--params", str(yaml), "--data", data, "--out", out, "--resume"]
    result = CliRunner().invoke(app, [*cli, "--metrics", f"{out}.metrics{rank}.json"])
    if result.exit_code != 0:
        raise RuntimeError(f"rank {rank}: {result.output}") from result.exception
    Path(f"{out}.rank{rank}.json").write_text(json.dumps({"writes": writes, **results[0]}))


def _spawn(data: Path, out: Path, die: bool = False) -> None:
    Path(f"{out}.params.yaml").write_text(render_params(Params(pretrain=PARAMS)))
    _launch(_pretrain, _free_port(), str(data), str(out), die)


def test_ddp_pretrain_rank0_writes_and_resume_is_identical(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    _spawn(tiny_dataset, tmp_path / "straight")
    runs = [json.loads((tmp_path / f"straight.rank{r}.json").read_text()) for r in range(WORLD)]
    assert runs[0]["writes"] == ["checkpoint"] * 3 + ["model"]
    assert runs[1]["writes"] == [], "only rank 0 writes checkpoints and the model"
    assert runs[0]["loss_per_epoch"] == runs[1]["loss_per_epoch"], "one global loss"
    assert runs[0]["world_size"] == 2 and len(runs[0]["loss_per_epoch"]) == 3
    assert runs[0]["train_images"] == 32
    assert (tmp_path / "straight.metrics0.json").is_file()
    assert not (tmp_path / "straight.metrics1.json").exists(), "--metrics: rank 0 only"

    with pytest.raises(mp.ProcessRaisedException, match="simulated kill"):
        _spawn(tiny_dataset, tmp_path / "resumed", die=True)
    assert not (tmp_path / "resumed").exists(), "no model directory from a killed run"
    _spawn(tiny_dataset, tmp_path / "resumed")
    resumed = json.loads((tmp_path / "resumed.rank0.json").read_text())
    assert resumed["writes"] == ["checkpoint"] * 2 + ["model"], "continued after epoch 1"
    assert resumed["loss_per_epoch"] == runs[0]["loss_per_epoch"]

    straight, _ = load_encoder(tmp_path / "straight")
    again, _ = load_encoder(tmp_path / "resumed")
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def _mined(root: Path, nodes: int = 48, edges: int = 40) -> Path:
    """A stand-in for a ``selfsup mine`` output: random patches and random positive pairs."""
    random_dataset(root, n_train=nodes)
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.permutation(nodes)[:edges], rng.permutation(nodes)[:edges]], axis=1)
    zeros = np.zeros(nodes, dtype=np.int64)
    graph = Graph(
        videos=["v"] * nodes,
        frames=zeros,
        boxes=np.zeros((nodes, 4)),
        tracks=zeros,
        gt_instance=zeros,
        gt_class=zeros,
        edges=pairs.astype(np.int64),
        edge_types=["intra"] * edges,
    )
    write_graph(root, graph)
    return root


def _pretrain_method(rank: int, port: int, data: str, pairs: str, out: str, method: str) -> None:
    _torchrun_env(rank, port)
    params = PARAMS.model_copy(update={"method": method, "epochs": 1, "warmup_epochs": 0})
    mined = Path(pairs) if method in ("simclr+triplet", "groco+mined") else None
    sizes: list[int] = []
    real_loss = mined_methods.triplet_loss

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        sizes.append(len(args[0]))
        return real_loss(*args, **kwargs)

    mined_methods.triplet_loss = spy  # type: ignore[assignment]
    metrics = pretrain.run(Path(data), params=params, out=Path(out), pairs=mined)
    Path(f"{out}.rank{rank}.json").write_text(json.dumps({"sizes": sizes, **metrics}))


@pytest.mark.parametrize("method", ["triplet", "simclr+triplet"])
def test_ddp_triplet_methods_compute_one_global_loss(
    tiny_dataset: Path, tmp_path: Path, method: str
) -> None:
    """Gathered pairs and node ids, the same negatives drawn on every rank: every rank reports
    the same loss; with simclr+triplet DDP sees two forward passes before one backward."""
    mined = _mined(tmp_path / "mined")
    data = mined if method == "triplet" else tiny_dataset
    out = tmp_path / "model"
    _launch(_pretrain_method, _free_port(), str(data), str(mined), str(out), method)
    runs = [json.loads((tmp_path / f"model.rank{r}.json").read_text()) for r in range(WORLD)]
    assert runs[0]["loss_per_epoch"] == runs[1]["loss_per_epoch"]
    steps = 32 // PARAMS.batch_size  # max_images: 32 images (simclr+triplet) or pairs (triplet)
    assert runs[0]["sizes"] == [PARAMS.batch_size] * steps, "one global batch of pairs per step"
    assert np.isfinite(runs[0]["loss_per_epoch"]).all() and runs[0]["method"] == method
    assert load_encoder(out)[0] is not None


def test_environment_layout_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.from_env() == distributed.SINGLE and distributed.is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        distributed.from_env()
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    assert distributed.from_env() == distributed.Dist(rank=3, world_size=4, local_rank=3)
    assert not distributed.is_main_process()
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4"):
        distributed.from_env()


def test_rank_shards_partition_each_global_batch() -> None:
    """Step k's per-rank batches together are the k-th global batch of one process shuffling with
    the same seed (``randperm``), so a job sees the same global batches as one process."""
    n, local = 50, 4
    job = [distributed.Dist(r, WORLD, r) for r in range(WORLD)]
    shards = [list(distributed.sampler(n, j, seed=7) or []) for j in job]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(7)).tolist()
    assert set(shards[0]).isdisjoint(shards[1]) and len(shards[0]) == len(shards[1]) == n // 2
    step = local * WORLD
    for k in range(len(shards[0]) // local):
        together = shards[0][k * local : (k + 1) * local] + shards[1][k * local : (k + 1) * local]
        assert sorted(together) == sorted(perm[k * step : (k + 1) * step])
    assert list(distributed.sampler(n, job[0], seed=7) or []) == shards[0], "same seed, same"
    assert list(distributed.sampler(n, job[0], seed=8) or []) != shards[0]
    assert distributed.sampler(n, distributed.SINGLE, seed=7) is None


def test_shard_batches_splits_each_global_batch_between_the_ranks() -> None:
    """G-SimCLR's global batch sampler under DDP: the ranks' step-k batches are disjoint and
    together are the sampler's k-th batch (so no pseudo-label repeats across the global batch)."""
    from selfsup.train.gsimclr import DistinctLabelBatches

    labels = np.arange(40) % 10
    global_batches = DistinctLabelBatches(labels, 8, seed=3)
    job = [distributed.Dist(r, WORLD, r) for r in range(WORLD)]
    shares = [list(distributed.shard_batches(global_batches, j)) for j in job]
    expected = list(global_batches)
    assert len(shares[0]) == len(shares[1]) == len(expected) == len(global_batches)
    for k, batch in enumerate(expected):
        assert set(shares[0][k]).isdisjoint(shares[1][k])
        assert sorted(shares[0][k] + shares[1][k]) == sorted(batch)
        assert len(shares[0][k]) == len(batch) // WORLD
    assert distributed.shard_batches(global_batches, distributed.SINGLE) is global_batches


@pytest.mark.parametrize("method", ["groco+mined", "gsimclr"])
def test_ddp_groco_mined_and_gsimclr_agree_across_ranks(
    tiny_dataset: Path, tmp_path: Path, method: str
) -> None:
    """GroCo's graph positives are found among the *gathered* pairs and G-SimCLR's global
    batches are split between the ranks: both ranks compute one global loss."""
    mined = _mined(tmp_path / "mined")
    out = tmp_path / "model"
    _launch(_pretrain_method, _free_port(), str(tiny_dataset), str(mined), str(out), method)
    runs = [json.loads((tmp_path / f"model.rank{r}.json").read_text()) for r in range(WORLD)]
    assert runs[0]["loss_per_epoch"] == runs[1]["loss_per_epoch"]
    assert np.isfinite(runs[0]["loss_per_epoch"]).all() and runs[0]["world_size"] == WORLD
    assert load_encoder(out)[0] is not None


def _byol_rank(rank: int, port: int, data: str, out: str) -> None:
    """BYOL in one rank of a 2-process job; records a digest of the target's parameters after
    every EMA update."""
    _torchrun_env(rank, port)
    digests: list[str] = []
    real_update = byol.ema_update

    def spy(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
        real_update(target, online, tau)
        blob = b"".join(p.detach().cpu().numpy().tobytes() for p in target.parameters())
        digests.append(hashlib.sha256(blob).hexdigest())

    byol.ema_update = spy  # type: ignore[assignment]
    params = PARAMS.model_copy(update={"method": "byol", "epochs": 2})
    metrics = pretrain.run(Path(data), params=params, out=Path(out))
    Path(f"{out}.rank{rank}.json").write_text(json.dumps({"digests": digests, **metrics}))


def test_ddp_byol_updates_the_target_identically_on_every_rank(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """DDP keeps the online weights equal, so every rank's EMA moves its target to the same
    bits after every step; the ranks report the loss of the same gathered batch."""
    out = tmp_path / "model"
    _launch(_byol_rank, _free_port(), str(tiny_dataset), str(out))
    runs = [json.loads((tmp_path / f"model.rank{r}.json").read_text()) for r in range(WORLD)]
    steps = 2 * (32 // PARAMS.batch_size)
    assert len(runs[0]["digests"]) == steps, "one EMA update per optimiser step"
    assert runs[0]["digests"] == runs[1]["digests"]
    assert len(set(runs[0]["digests"])) == steps, "the target moves every step"
    assert runs[0]["loss_per_epoch"] == runs[1]["loss_per_epoch"]
    assert runs[0]["world_size"] == WORLD and load_encoder(out)[0] is not None
