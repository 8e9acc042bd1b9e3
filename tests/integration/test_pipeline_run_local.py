"""`selfsup pipeline run-local` (the train DAG under kfp.local.SubprocessRunner, offline) gives the
same metrics as `dvc repro` of the same chain with the same params and seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from fixtures.repo_copy import git_repo_copy

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~55 s on 2 shared cores

# Wall-clock measurements differ between any two runs; everything else must be identical.
TIMING_KEYS = {"seconds", "images_per_second", "epoch_seconds", "mean_images_per_second",
               "wall_seconds"}  # fmt: skip


def _run(args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Offline: any attempt to reach the network through a proxy-aware client fails fast.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository's tracked and new (not ignored) files, as a fresh git repository."""
    return git_repo_copy(tmp_path / "repo")


def test_run_local_matches_dvc_repro(clone: Path, tmp_path: Path) -> None:
    _run(
        ["selfsup", "params", "write", "--profile", "tiny", "--out", "params.yaml", "--force"],
        clone,
    )
    _run(["dvc", "repro"], clone)
    reference = {
        stage: json.loads((clone / "reports" / f"{stage}.json").read_text())
        for stage in ("data", "pretrain", "evaluate")
    }

    out = _run(
        ["selfsup", "pipeline", "run-local", "--params", "params.yaml",
         "--root", str(tmp_path / "local"), "--metrics", str(tmp_path / "local.json")],
        clone,
    )  # fmt: skip
    assert "local run finished" in out
    local = json.loads((tmp_path / "local.json").read_text())

    for stage in ("data", "pretrain", "evaluate"):
        assert _without_timings(local[stage]) == _without_timings(reference[stage]), stage
    assert local["pretrain"]["loss_per_epoch"] == reference["pretrain"]["loss_per_epoch"]
    assert 0.0 <= local["evaluate"]["trained"]["knn_top1"] <= 1.0

    (run_dir,) = (tmp_path / "local").iterdir()
    local_manifest = json.loads((run_dir / "data/dataset/manifest.json").read_text())
    dvc_manifest = json.loads((clone / "artifacts/data/manifest.json").read_text())
    assert local_manifest["content_hash"] == dvc_manifest["content_hash"]
    assert (run_dir / "data/content_hash").read_text() == dvc_manifest["content_hash"]
    assert (run_dir / "evaluate/report").read_text().startswith("<!DOCTYPE html>")
    # distill: the same learnt images and targets as the dvc stage's.
    for name in ("images.pt", "targets.pt"):
        local_tensor = torch.load(run_dir / "distill/output" / name, weights_only=True)
        dvc_tensor = torch.load(clone / "artifacts/distilled" / name, weights_only=True)
        assert torch.equal(local_tensor, dvc_tensor), name
    # mine: the local twin (every shard, then the merge) gives the dvc stage's graph.
    for name in ("graph/nodes.csv", "graph/edges.csv"):
        local_graph = (run_dir / "mine/mined" / name).read_bytes()
        assert local_graph == (clone / "artifacts/mined" / name).read_bytes(), name


def test_run_local_retrain_then_forget_serves_a_deletion_request(tmp_path: Path) -> None:
    from selfsup.config import GateParams, RegistryParams, profile_params
    from selfsup.pipeline.local import run_local
    from selfsup.registry.register import open_registry
    from selfsup.registry.registry import model_id

    registry = RegistryParams(uri=str(tmp_path / "registry"))
    result = run_local(profile_params("tiny"), tmp_path / "local", "retrain", registry)
    decision = result.metrics["register"]
    assert decision["action"] == "promote" and decision["promoted"] is True
    manifest = json.loads((result.task_dir("pretrain") / "model/manifest.json").read_text())
    champion = open_registry(registry.uri).resolve("champion")
    assert decision["model"] == champion == model_id(manifest)

    # forget: the champion unlearns two samples; with lenient margins (params.yaml's gate) the
    # audit passes.
    lenient = profile_params("tiny").model_copy(
        update={"gate": GateParams(max_forget_gap=1.0, max_attack_gap=1.0)}
    )
    ids = ["train/3", "train/7"]
    served = run_local(lenient, tmp_path / "local", "forget", registry, ids)
    record = json.loads((served.task_dir("unlearn") / "request/request.json").read_text())
    assert record["ids"] == ids and record["model_before"]["encoder"] == manifest["content_hash"]
    forgot = served.metrics["register"]
    assert forgot["action"] == "promote" and forgot["champion_before"] == champion
    assert open_registry(registry.uri).resolve("champion") == forgot["model"] != champion

    # retrain-distilled: the champion distills the data, a fresh student trains on the set.
    cheap = run_local(profile_params("tiny"), tmp_path / "local", "retrain-distilled", registry)
    distilled = json.loads((cheap.task_dir("distill") / "output/manifest.json").read_text())
    assert (
        distilled["teacher"]
        == json.loads((served.task_dir("unlearn") / "unlearned/manifest.json").read_text())[
            "content_hash"
        ]
    ), "the teacher is the current champion (the unlearned model)"
    student = json.loads((cheap.task_dir("pretrain-distilled") / "model/manifest.json").read_text())
    assert student["data"] == distilled["content_hash"]
    assert cheap.metrics["pretrain-distilled"]["method"] == "distilled"
    assert cheap.metrics["register"]["model"] == model_id(student)
