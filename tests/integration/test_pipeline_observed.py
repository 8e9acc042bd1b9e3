"""Every task of a pipeline run observes itself: the `retrain` DAG under kfp.local pushes each
task's metrics to a real Pushgateway, grouped by the KFP run id (KFP's own placeholder, resolved
by its runner) and the task's name, and the registry records the same run id and the code
revision (checked against `git rev-parse HEAD`, not our lookup)."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from fixtures.services import PushgatewayService
from prometheus_client.parser import text_string_to_metric_families

from selfsup.config import RegistryParams, profile_params
from selfsup.pipeline.local import run_local
from selfsup.registry.register import open_registry

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~60 s on 2 shared cores
TASKS = {"data", "mine", "pretrain", "evaluate", "register"}


def test_retrain_tasks_push_metrics_under_the_run_id_that_the_registry_records(
    pushgateway_service: PushgatewayService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFSUP_PUSHGATEWAY", pushgateway_service.address)
    monkeypatch.delenv("SELFSUP_RUN_ID", raising=False)
    monkeypatch.delenv("SELFSUP_CODE_REVISION", raising=False)
    registry = RegistryParams(uri=str(tmp_path / "registry"))
    result = run_local(profile_params("tiny"), tmp_path / "runs", "retrain", registry)

    runs: dict[str, set[str]] = defaultdict(set)  # run id → tasks that pushed under it
    failures: dict[tuple[str, str], float] = {}
    pretrain_epochs: set[tuple[str, float, str]] = set()
    for family in text_string_to_metric_families(pushgateway_service.metrics_text()):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("job") != "selfsup" or "run_id" not in labels:
                continue
            runs[labels["run_id"]].add(labels["stage"])
            if sample.name == "selfsup_stage_failures_total":
                failures[(labels["run_id"], labels["stage"])] = sample.value
            if sample.name == "selfsup_stage_metric" and labels.get("name") == "epochs":
                pretrain_epochs.add((labels["run_id"], sample.value, labels["stage"]))
    model_id = result.metrics["register"]["model"]
    lineage = open_registry(registry.uri).record(model_id)["lineage"]
    run_id = lineage["run"]  # the Pushgateway is shared by the session: find our run by it
    assert run_id and "{{" not in run_id, "the placeholder was resolved"
    assert runs[run_id] >= TASKS, f"every task pushed under {run_id}: {dict(runs)}"
    assert all(failures[(run_id, task)] == 0 for task in TASKS)
    assert (run_id, float(profile_params("tiny").pretrain.epochs), "pretrain") in pretrain_epochs
    assert lineage["source"] == "kubeflow"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert lineage["code_revision"].removesuffix("+dirty") == head
