"""`mine` end to end on synthetic video: dataset + graph format, failures, sharding, CLI, and
triplet / SimCLR+triplet pretraining on the mined pairs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import MineParams, PretrainParams
from selfsup.data.shards import load_split
from selfsup.errors import ConfigError
from selfsup.mining import stage
from selfsup.mining.features import encoder_features
from selfsup.mining.graph import read_graph
from selfsup.mining.synthetic import write_synthetic_set
from selfsup.mining.transitive import transitive_pairs
from selfsup.models.artifact import load_encoder
from selfsup.store import read_manifest
from selfsup.train import stage as pretrain
from selfsup.train.methods import mined as mined_methods

PARAMS = MineParams(source="folder", contact_pairs=2)
TRAIN = PretrainParams(
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    epochs=2,
    warmup_epochs=0,
    batch_size=8,
    max_images=32,
    num_workers=0,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    write_synthetic_set(root, videos=3, frames=40, size=(96, 128), objects=3, classes=4, seed=0)
    return root


@pytest.fixture(scope="module")
def mined(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("mined") / "mined"
    return out, stage.run(videos, params=PARAMS, out=out)


def test_dataset_and_graph_are_consistent(mined: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = mined
    manifest = read_manifest(out, kind="dataset")
    assert {"graph/nodes.csv", "graph/edges.csv", "contact_sheet.png"} <= set(manifest["files"])
    split = load_split(out, "train")
    graph = read_graph(out)
    assert len(split) == graph.num_nodes == metrics["nodes"] > 0
    assert metrics["videos"] == 3 and metrics["failures"] == []
    assert manifest["graph"]["edges"] == graph.counts() == metrics["edges"]
    intra, inter = graph.edges_of("intra"), graph.edges_of("inter")
    # A chain of nodes per kept track: nodes − tracks intra edges, consecutive nodes.
    assert len(intra) == graph.num_nodes - metrics["tracks_kept"] and len(inter) > 0
    assert np.all(graph.tracks[intra[:, 0]] == graph.tracks[intra[:, 1]])
    assert np.all(graph.tracks[inter[:, 0]] != graph.tracks[inter[:, 1]])
    # ≥ min_track_seconds apart at the clip's native rate (10 fps here)
    span = (graph.frames[intra[:, 1]] - graph.frames[intra[:, 0]]) / 10.0
    assert np.all(span >= PARAMS.min_track_seconds - 1e-9)
    expected = {tuple(r) for r in transitive_pairs(intra, inter).tolist()}
    assert {tuple(r) for r in graph.edges_of("transitive").tolist()} == expected
    # Synthetic truth was matched and measured.
    quality = metrics["synthetic"]
    assert 0.0 <= quality["track_iou_mean"] <= 1.0
    assert quality["chance_same_class_uniform"] == 0.25


def test_corrupt_video_is_reported_and_the_rest_are_mined(
    videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="selfsup.mine")
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("synthetic-000.avi", "synthetic-001.avi"):
        (folder / name).write_bytes((videos / name).read_bytes())
    (folder / "broken.mp4").write_bytes(b"\x00garbage" * 500)
    metrics = stage.run(folder, params=PARAMS, out=tmp_path / "out")
    assert metrics["videos"] == 2
    assert [f["video"] for f in metrics["failures"]] == ["broken.mp4"]
    assert "broken.mp4" in metrics["failures"][0]["error"]
    assert read_manifest(tmp_path / "out")["failures"] == metrics["failures"]
    # Progress without a terminal: one log line per video, the skipped one as a warning.
    lines = [r.getMessage() for r in caplog.records if r.name == "selfsup.mine"]
    assert any(m.startswith("skipped broken.mp4") for m in lines)
    for name in ("synthetic-000.avi", "synthetic-001.avi"):
        assert any(m.startswith(f"mined {name}: ") and "frames/s" in m for m in lines), name


def test_two_shards_merge_to_the_single_shard_graph(
    videos: Path, mined: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    sharded = PARAMS.model_copy(update={"num_shards": 2})
    for index in (1, 0):
        stage.run_shard(index, videos, params=sharded, out=tmp_path / f"shard{index}")
    stage.run_merge(
        [tmp_path / "shard1", tmp_path / "shard0"], params=sharded, out=tmp_path / "merged"
    )
    single = mined[0]
    for name in ("graph/nodes.csv", "graph/edges.csv"):
        assert (tmp_path / "merged" / name).read_bytes() == (single / name).read_bytes(), name
    assert torch.equal(
        load_split(tmp_path / "merged", "train").images, load_split(single, "train").images
    )


def test_synthetic_shards_generate_their_share_and_merge_to_the_single_run(
    tmp_path: Path,
) -> None:
    synthetic = MineParams(
        source="synthetic",
        synthetic_videos=3,
        synthetic_frames=16,
        synthetic_size=(96, 128),
        contact_pairs=2,
    )
    stage.run(params=synthetic, out=tmp_path / "single")
    sharded = synthetic.model_copy(update={"num_shards": 2})
    counts = [
        stage.run_shard(i, params=sharded, out=tmp_path / f"shard{i}")["videos"] for i in (0, 1)
    ]
    assert counts == [2, 1]  # round-robin over the 3 generated videos
    stage.run_merge(
        [tmp_path / "shard0", tmp_path / "shard1"], params=sharded, out=tmp_path / "merged"
    )
    for name in ("graph/nodes.csv", "graph/edges.csv"):
        merged = (tmp_path / "merged" / name).read_bytes()
        assert merged == (tmp_path / "single" / name).read_bytes(), name


def test_cli_mine_and_clear_error_without_videos(
    videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SELFSUP_VIDEO_DIR", raising=False)
    params = tmp_path / "params.yaml"
    params.write_text("mine:\n  source: folder\n  contact_pairs: 1\n")
    runner = CliRunner()
    failed = runner.invoke(app, ["mine", "--params", str(params), "--out", str(tmp_path / "m")])
    assert failed.exit_code == 2 and "SELFSUP_VIDEO_DIR" in failed.output
    monkeypatch.setenv("SELFSUP_VIDEO_DIR", str(videos))
    done = runner.invoke(
        app,
        [
            "mine",
            "--params",
            str(params),
            "--out",
            str(tmp_path / "m"),
            "--metrics",
            str(tmp_path / "m.json"),
        ],
    )
    assert done.exit_code == 0, done.output
    assert load_split(tmp_path / "m", "train").images.shape[1:] == (3, 32, 32)


def _weights(model: Path) -> dict[str, torch.Tensor]:
    return load_encoder(model)[0].state_dict()


def test_triplet_pretraining_on_mined_pairs_is_deterministic(
    mined: tuple[Path, dict[str, Any]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = TRAIN.model_copy(update={"method": "triplet"})
    assert params.progressive_resize is not None  # the default's, which sizes views only
    with caplog.at_level("INFO", logger="selfsup.pretrain"):
        metrics = pretrain.run(mined[0], params=params, out=tmp_path / "a")
    assert "trains on no augmented views: pretrain.progressive_resize is not used" in caplog.text
    assert metrics["method"] == "triplet" and metrics["mined_pairs"] == 32  # max_images pairs
    assert sum(mined[1]["edges"].values()) > 32
    assert all(np.isfinite(metrics["loss_per_epoch"]))
    pretrain.run(mined[0], params=params, out=tmp_path / "b")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_triplet_reads_pairs_when_given_as_dvc_passes_them(
    mined: tuple[Path, dict[str, Any]], tiny_dataset: Path, tmp_path: Path
) -> None:
    """`--data artifacts/data --pairs artifacts/mined` (dvc.yaml's command) trains triplet on the
    mined set exactly as `--data artifacts/mined` does, and records both in the lineage."""
    params = TRAIN.model_copy(update={"method": "triplet", "epochs": 1})
    pretrain.run(mined[0], params=params, out=tmp_path / "direct")
    pretrain.run(tiny_dataset, params=params, out=tmp_path / "via-pairs", pairs=mined[0])
    direct, via = _weights(tmp_path / "direct"), _weights(tmp_path / "via-pairs")
    assert all(torch.equal(direct[k], via[k]) for k in direct)
    manifest = read_manifest(tmp_path / "via-pairs", kind="encoder")
    assert manifest["pairs"] == read_manifest(mined[0])["content_hash"]


def test_simclr_plus_triplet_needs_pairs_and_adds_the_triplet_term(
    mined: tuple[Path, dict[str, Any]],
    tiny_dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = TRAIN.model_copy(update={"method": "simclr+triplet", "epochs": 1})
    with pytest.raises(ConfigError, match="--pairs"):
        pretrain.run(tiny_dataset, params=params, out=tmp_path / "x")
    # SimCLR ignores --pairs (dvc.yaml passes the mined set for every method): same weights.
    pretrain.run(tiny_dataset, params=TRAIN, out=tmp_path / "plain")
    pretrain.run(tiny_dataset, params=TRAIN, out=tmp_path / "ignored", pairs=mined[0])
    plain, ignored = _weights(tmp_path / "plain"), _weights(tmp_path / "ignored")
    assert all(torch.equal(plain[k], ignored[k]) for k in plain)
    calls: list[int] = []
    real = mined_methods.triplet_loss

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(mined_methods, "triplet_loss", spy)
    metrics = pretrain.run(tiny_dataset, params=params, out=tmp_path / "mixed", pairs=mined[0])
    assert metrics["method"] == "simclr+triplet" and metrics["train_images"] == 32
    assert calls == [8] * (32 // 8), "one triplet batch of batch_size pairs per SimCLR step"
    manifest = read_manifest(tmp_path / "mixed", kind="encoder")
    assert manifest["pairs"] == read_manifest(mined[0])["content_hash"]


def test_clustering_with_a_selfsup_encoder(
    videos: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    pretrain.run(tiny_dataset, params=TRAIN.model_copy(update={"epochs": 1}), out=tmp_path / "enc")
    encoder, manifest = load_encoder(tmp_path / "enc")
    metrics = stage.run(videos, tmp_path / "enc", params=PARAMS, out=tmp_path / "mined")
    assert metrics["edges"]["inter"] > 0
    patches = load_split(tmp_path / "mined", "train").images[:4]
    feats = encoder_features(patches.permute(0, 2, 3, 1).numpy(), tmp_path / "enc")
    assert feats.shape == (4, manifest["out_dim"])
    with torch.no_grad():
        expected = encoder(patches.float() / 255.0).numpy()
    assert np.allclose(feats, expected, atol=1e-5)


def test_real_video_is_not_labelled_with_synthetic_class_names(
    videos: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "clip.avi").write_bytes((videos / "synthetic-000.avi").read_bytes())  # no truth file
    out = tmp_path / "mined"
    stage.run(real, params=MineParams(contact_pairs=2), out=out)  # default source: synthetic
    manifest = read_manifest(out, kind="dataset")
    assert manifest["class_names"] == []
    assert set(load_split(out, "train").labels.tolist()) <= {-1}
    synthetic = tmp_path / "synthetic"
    stage.run(videos, params=PARAMS, out=synthetic)
    assert read_manifest(synthetic, kind="dataset")["class_names"] == [
        "disc",
        "square",
        "triangle",
        "cross",
    ]
