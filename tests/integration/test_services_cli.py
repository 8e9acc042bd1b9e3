"""The CLI with real services: stage metrics read back from a Pushgateway, an unreachable
Pushgateway, the registry on Ceph RGW, and `dvc push`/`dvc pull` through the S3 remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from fixtures.repo_copy import copy_working_tree
from fixtures.services import PushgatewayService, free_port
from prometheus_client.parser import text_string_to_metric_families

from selfsup.config import PretrainParams, profile_params, render_params
from selfsup.models.artifact import save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.store.s3 import S3Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> str:
    full = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "src"),
        "DVC_NO_ANALYTICS": "1",
        **env,
    }
    done = subprocess.run(args, cwd=cwd, env=full, capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def s3_env(settings: S3Settings) -> dict[str, str]:
    return {
        "SELFSUP_S3_ENDPOINT": settings.endpoint,
        "AWS_ACCESS_KEY_ID": settings.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.secret_key,
    }


@pytest.fixture
def tiny_params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(render_params(profile_params("tiny")))
    return path


def test_a_stage_pushes_its_metrics_with_the_grouping_key(
    pushgateway_service: PushgatewayService, tiny_params: Path, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    env = {
        "SELFSUP_PUSHGATEWAY": pushgateway_service.address,
        "SELFSUP_PIPELINE": "it",
        "SELFSUP_RUN_ID": run_id,
    }
    run(["selfsup", "data", "prepare", "--params", str(tiny_params), "--out", "d"], tmp_path, env)
    want = {"job": "selfsup", "pipeline": "it", "run_id": run_id, "stage": "data"}
    found = {}
    for family in text_string_to_metric_families(pushgateway_service.metrics_text()):
        for s in family.samples:
            if all(s.labels.get(k) == v for k, v in want.items()):
                found[(s.name, s.labels.get("name"))] = s.value
    tiny = profile_params("tiny").data
    images = tiny.synthetic_train + tiny.synthetic_test
    assert found[("selfsup_stage_items_processed_total", None)] == images
    assert found[("selfsup_stage_failures_total", None)] == 0
    assert found[("selfsup_stage_duration_seconds", None)] > 0
    rate = found[("selfsup_stage_throughput_items_per_second", None)]
    assert rate == pytest.approx(images / found[("selfsup_stage_duration_seconds", None)])
    assert found[("selfsup_stage_metric", "images_total")] == images


def test_an_unreachable_pushgateway_only_warns(tiny_params: Path, tmp_path: Path) -> None:
    env = {"SELFSUP_PUSHGATEWAY": f"127.0.0.1:{free_port()}"}
    out = run(
        ["selfsup", "data", "prepare", "--params", str(tiny_params), "--out", "d"], tmp_path, env
    )
    assert "could not push metrics of data" in out
    assert (tmp_path / "d/manifest.json").is_file()


def _model(root: Path, seed: int) -> Path:
    params = PretrainParams(
        convnet_width=8, projector_hidden=16, projector_out=8, epochs=1, warmup_epochs=0
    )
    torch.manual_seed(seed)
    save_encoder(root, build_encoder(params), params, data="d" * 64)
    return root


def test_registry_cli_on_s3(s3_settings: S3Settings, tmp_path: Path) -> None:
    uri = f"s3://reg-{uuid.uuid4().hex[:8]}/selfsup"
    env = {**s3_env(s3_settings), "SELFSUP_REGISTRY": uri}
    evals = []
    for i, (rankme, knn) in enumerate([(5.0, 0.50), (5.5, 0.501), (6.0, 0.60)]):
        path = tmp_path / f"eval{i}.json"
        path.write_text(
            json.dumps({"labeled": True, "trained": {"rankme": rankme, "knn_top1": knn}})
        )
        evals.append(path)

    def register(i: int) -> dict[str, str]:
        model = _model(tmp_path / f"m{i}", i)
        run(
            [
                "selfsup",
                "registry",
                "register",
                "--model",
                str(model),
                "--evaluation",
                str(evals[i]),
                "--out",
                f"d{i}.json",
            ],
            tmp_path,
            env,
        )
        decision: dict[str, str] = json.loads((tmp_path / f"d{i}.json").read_text())
        return decision

    first, second, third = register(0), register(1), register(2)
    assert [d["action"] for d in (first, second, third)] == ["promote", "keep", "promote"]
    assert "knn_top1 0.5010 vs 0.5000" in second["reason"]
    listing = run(["selfsup", "registry", "list"], tmp_path, env)
    assert f"{third['model']}" in listing and "champion" in listing
    shown = json.loads(run(["selfsup", "registry", "show", "champion"], tmp_path, env))
    assert shown["id"] == third["model"] and shown["lineage"]["parent"] == first["model"]
    assert len(shown["lineage"]["data_version"]["git_revision"]) >= 7
    run(["selfsup", "registry", "rollback", "--reason", "bad canary"], tmp_path, env)
    shown = json.loads(run(["selfsup", "registry", "show", "champion"], tmp_path, env))
    assert shown["id"] == first["model"]
    run(["selfsup", "registry", "pull", "champion", "back"], tmp_path, env)
    assert (tmp_path / "back/encoder.pt").read_bytes() == (tmp_path / "m0/encoder.pt").read_bytes()
    bad = {**env, "AWS_SECRET_ACCESS_KEY": "wrong"}
    out = run(["selfsup", "registry", "list"], tmp_path, bad, ok=False)
    assert "error:" in out and "rejected the credentials" in out and "Traceback" not in out


def test_dvc_push_and_pull_through_the_s3_remote(s3_settings: S3Settings, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = s3_env(s3_settings)
    run(["git", "init", "-q"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    bucket = f"dvc-{uuid.uuid4().hex[:8]}"
    from selfsup.store.s3 import S3Backend

    S3Backend(bucket, "", s3_settings).ensure_bucket()
    run(["selfsup", "store", "dvc-remote", f"s3://{bucket}/cache", "--repo", "."], repo, env)
    config = (repo / ".dvc/config").read_text()
    assert f"url = s3://{bucket}/cache" in config and s3_settings.endpoint in config
    assert s3_settings.secret_key not in config
    data = repo / "data"
    data.mkdir()
    for i in range(20):
        (data / f"{i}.bin").write_bytes(os.urandom(1000 + i))
    expected = {p.name: p.read_bytes() for p in data.iterdir()}
    run(["dvc", "add", "data"], repo, env)
    run(["dvc", "push"], repo, env)
    shutil.rmtree(data)
    shutil.rmtree(repo / ".dvc/cache")
    run(["dvc", "pull"], repo, env)
    assert {p.name: p.read_bytes() for p in data.iterdir()} == expected


@pytest.mark.slow
def test_every_stage_output_round_trips_through_the_dvc_s3_remote(
    s3_settings: S3Settings, tmp_path: Path
) -> None:
    """`dvc repro` (tiny) → `dvc push` → delete outputs and cache → `dvc pull` → up to date."""
    repo = copy_working_tree(tmp_path / "repo")
    env = {**s3_env(s3_settings), "SELFSUP_REGISTRY": str(tmp_path / "registry")}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(["git", "init", "-q"], repo, env)
    run(
        ["selfsup", "params", "write", "--profile", "tiny", "--out", "params.yaml", "--force"],
        repo,
        env,
    )
    run([*git, "add", "-A"], repo, env)
    run([*git, "commit", "-qm", "clone"], repo, env)
    run(["dvc", "repro"], repo, env)
    bucket = f"dvc-{uuid.uuid4().hex[:8]}"
    from selfsup.store.s3 import S3Backend

    S3Backend(bucket, "", s3_settings).ensure_bucket()
    run(["selfsup", "store", "dvc-remote", f"s3://{bucket}/cache"], repo, env)
    weights = (repo / "artifacts/encoder/encoder.pt").read_bytes()
    run(["dvc", "push"], repo, env)
    for out in ("artifacts/data", "artifacts/encoder", ".dvc/cache"):  # the cached outputs
        shutil.rmtree(repo / out)
    run(["dvc", "pull"], repo, env)
    assert (repo / "artifacts/encoder/encoder.pt").read_bytes() == weights
    assert (repo / "artifacts/data/manifest.json").is_file()
    status = run(["dvc", "status"], repo, env)
    assert "changed" not in status and "deleted" not in status, status
    decision = json.loads((repo / "reports/registry.json").read_text())
    # dvc repro registers and never promotes: the gate's verdict is recorded, not applied.
    assert decision["action"] == "keep" and decision["gate_admits"] is True
    reason = decision["reason"]
    assert "no champion yet" in reason and "selfsup registry promote" in reason


def test_the_fixture_pushgateway_keeps_nothing_on_disk(
    pushgateway_service: PushgatewayService,
) -> None:
    """Its own flags, as the running binary reports them: no persistence file (Debian's default
    would load and rewrite /var/lib/prometheus/pushgateway.data across test runs)."""
    import urllib.request

    url = f"http://{pushgateway_service.address}/api/v1/status"
    with urllib.request.urlopen(url, timeout=5) as response:
        flags = json.loads(response.read())["data"]["flags"]
    assert flags["persistence.file"] == ""
    assert flags["web.listen-address"] == pushgateway_service.address
