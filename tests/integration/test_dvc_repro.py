"""`dvc repro` of the tiny profile in a temporary copy of the repository, with the real DVC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.repo_copy import git_repo_copy, run_in

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _run(args: list[str], cwd: Path) -> str:
    done = run_in(cwd, args)
    return done.stdout + done.stderr


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository's tracked and new (not ignored) files, as a fresh git repository."""
    return git_repo_copy(tmp_path / "repo")


def test_tiny_profile_repro_is_complete_idempotent_and_incremental(clone: Path) -> None:
    _run(
        ["selfsup", "params", "write", "--profile", "tiny", "--out", "params.yaml", "--force"],
        clone,
    )
    first = _run(["dvc", "repro"], clone)
    for stage in ("data", "mine", "pretrain", "evaluate", "unlearn"):
        assert f"Running stage '{stage}'" in first
    mined = json.loads((clone / "reports/mine.json").read_text())
    assert mined["failures"] == [] and mined["nodes"] > 0 and mined["edges"]["intra"] > 0
    evaluation = json.loads((clone / "reports/evaluate.json").read_text())
    assert 0.0 <= evaluation["trained"]["knn_top1"] <= 1.0
    assert (clone / "reports/evaluate/report.html").is_file()
    assert (clone / "artifacts/encoder/encoder.pt").is_file()
    request = json.loads((clone / "artifacts/unlearned/request.json").read_text())
    assert request["ids_count"] == 10 and request["model_after"]["encoder"]

    distilled = json.loads((clone / "reports/distill.json").read_text())  # the distill stage ran
    assert distilled["num_images"] == 8 and (clone / "artifacts/distilled/images.pt").is_file()
    assert "stage" not in _run(["dvc", "status"], clone).lower().replace("pipelines are up", "")

    second = _run(["dvc", "repro"], clone)
    assert "Running stage" not in second, f"second repro re-ran something:\n{second}"

    params = (clone / "params.yaml").read_text().replace("knn_k: 5", "knn_k: 3")
    (clone / "params.yaml").write_text(params)
    third = _run(["dvc", "repro"], clone)
    assert "Running stage 'evaluate'" in third
    assert "Running stage 'data'" not in third and "Running stage 'pretrain'" not in third
    assert json.loads((clone / "reports/evaluate.json").read_text())["knn_k"] == 3
