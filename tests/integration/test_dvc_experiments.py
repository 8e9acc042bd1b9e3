"""DVC experiments on the tiny profile with the real DVC: `dvc exp run -S …` twice, then what
`dvc exp show`, `dvc metrics diff` and `dvc plots diff` report, and that no experiment promoted
a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.repo_copy import git_repo_copy, run_in

from selfsup.registry.register import open_registry

pytestmark = pytest.mark.integration
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _run(args: list[str], cwd: Path) -> str:
    return run_in(cwd, args).stdout


def _experiments(shown: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json``'s experiments by name: their params and metrics files' data."""
    found: dict[str, dict[str, Any]] = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for revision in experiment.get("revs") or []:
                found[revision["name"]] = revision["data"]
    return found


def test_two_experiments_show_their_metrics_and_neither_promotes(tmp_path: Path) -> None:
    repo = git_repo_copy(tmp_path / "repo")
    tiny = ["selfsup", "params", "write", "--profile", "tiny", "--out", "params.yaml", "--force"]
    _run(tiny, repo)
    _run(["dvc", "repro", "register"], repo)
    # What a user commits after a run: the lock and the metrics (git tracks reports/*.json).
    _run([*GIT, "add", "-A"], repo)
    committed = _run(["git", "ls-files", "reports"], repo).split()
    assert {"reports/evaluate.json", "reports/pretrain.json", "reports/registry.json"} <= set(
        committed
    )
    assert not any(name.startswith("reports/evaluate/") for name in committed)  # DVC's cache
    _run([*GIT, "commit", "-qm", "tiny baseline"], repo)

    for name, seed in (("seed-1", 1), ("seed-2", 2)):
        _run(["dvc", "exp", "run", "register", "-n", name, "-S", f"pretrain.seed={seed}"], repo)

    experiments = _experiments(json.loads(_run(["dvc", "exp", "show", "--json"], repo)))
    assert {"seed-1", "seed-2"} <= set(experiments)
    knn = {}
    for name, seed in (("seed-1", 1), ("seed-2", 2)):
        data = experiments[name]
        assert data["params"]["params.yaml"]["data"]["pretrain"]["seed"] == seed
        evaluation = data["metrics"]["reports/evaluate.json"]["data"]
        knn[name] = evaluation["trained"]["knn_top1"]
        assert 0.0 <= knn[name] <= 1.0
        assert data["metrics"]["reports/registry.json"]["data"]["action"] == "keep"

    # The committed baseline against an experiment, as `dvc metrics diff main` would.
    diff = json.loads(_run(["dvc", "metrics", "diff", "HEAD", "seed-1", "--json"], repo))
    assert diff["reports/evaluate.json"]["trained.knn_top1"]["new"] == knn["seed-1"]
    plots = json.loads(_run(["dvc", "plots", "diff", "HEAD", "seed-1", "--json"], repo))
    for plot in (
        "reports/evaluate/plots/per_class.csv",
        "reports/evaluate/plots/reliability.csv",
        "artifacts/encoder/loss.csv",
    ):
        assert plot in json.dumps(plots), plot

    # Three registered models (the baseline and two experiments); none was made champion.
    listing = _run(["selfsup", "registry", "list"], repo).splitlines()
    assert len(listing) == 3 and not any("champion" in line for line in listing), listing
    log = open_registry(str(repo / "registry")).decisions()
    assert [d["action"] for d in log] == ["keep"] * 3
    assert all("gate_admits" in d and "selfsup registry promote" in d["reason"] for d in log)
