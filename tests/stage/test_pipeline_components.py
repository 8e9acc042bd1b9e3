"""The task components through KFP's own executor, as a pod runs them: the tiny chain end to
end, the UI metadata KFP writes, the cluster's mining fan-out (a collected list input) against
the offline task, and one-line errors on bad input.

Executor inputs are built from each component's own spec (its declared inputs and outputs), so
a task function whose signature drifts from what the DAG wires fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.kfp_executor import execute
from fixtures.services import PushgatewayService

from selfsup.config import profile_params
from selfsup.data.shards import read_dataset_manifest
from selfsup.observe.metrics import flatten_metrics
from selfsup.pipeline.dags import section_arguments


def ui(output: dict[str, Any], name: str = "metrics") -> dict[str, Any]:
    return dict(output["artifacts"][name]["artifacts"][0]["metadata"])


def test_tiny_chain_through_kfps_executor(tmp_path: Path) -> None:
    sections = section_arguments(profile_params("tiny"))
    data, mine, train = tmp_path / "data", tmp_path / "mine", tmp_path / "pretrain"

    output = execute("data", data, data_params=sections["data"])
    digest = (data / "content_hash").read_text()
    assert digest == read_dataset_manifest(data / "dataset")["content_hash"]
    data_metrics = json.loads((data / "metrics").read_text())
    assert data_metrics["images"] == {"train": 64, "test": 32}
    assert ui(output) == flatten_metrics(data_metrics)

    execute("mine", mine, mine_params=sections["mine"])
    output = execute(
        "pretrain",
        train,
        pretrain_params=sections["pretrain"],
        data_hash=digest,
        dataset=data / "dataset",
        mined=mine / "mined",
    )
    assert (train / "model" / "encoder.pt").is_file()
    assert (
        ui(output)["epochs"]
        == 2
        == len(json.loads((train / "metrics").read_text())["loss_per_epoch"])
    )

    evaluated = tmp_path / "evaluate"
    output = execute(
        "evaluate",
        evaluated,
        evaluate_params=sections["evaluate"],
        data_hash=digest,
        dataset=data / "dataset",
        model=train / "model",
    )
    evaluation = json.loads((evaluated / "evaluation" / "metrics.json").read_text())
    assert json.loads((evaluated / "metrics").read_text()) == evaluation
    report = (evaluated / "report").read_bytes()
    assert report == (evaluated / "evaluation/report.html").read_bytes()
    assert ui(output)["trained.knn_top1"] == evaluation["trained"]["knn_top1"]
    # The confusion matrix the UI draws: the probe's test predictions, rows = true classes.
    matrix = ui(output, "confusion")["confusionMatrix"]
    rows = [r["row"] for r in matrix["rows"]]
    assert len(rows) == len(matrix["annotationSpecs"]) == evaluation["num_classes"]
    assert sum(map(sum, rows)) == evaluation["num_test"]
    correct = sum(rows[i][i] for i in range(len(rows)))
    assert correct / evaluation["num_test"] == pytest.approx(evaluation["trained"]["linear_top1"])

    registry = {"uri": str(tmp_path / "registry"), "knn_margin": 0.005, "rankme_margin": 0.0}
    for attempt in ("first", "again"):
        output = execute(
            "register",
            tmp_path / f"register-{attempt}",
            registry_params=registry,
            candidate=train / "model",
            evaluation=evaluated / "evaluation",
        )
        decision = json.loads((tmp_path / f"register-{attempt}" / "metrics").read_text())
        assert ui(output)["promoted"] == float(attempt == "first")
    assert (decision["action"], decision["reason"]) == ("keep", "already the champion")

    # The forget pipeline's tasks: pull the champion, unlearn two samples, evaluate, register.
    pulled, served, checked = tmp_path / "pull", tmp_path / "unlearn", tmp_path / "evaluate-u"
    execute("pull", pulled, registry_params=registry, ref="champion")
    assert json.loads((pulled / "metrics").read_text())["model"] == decision["model"]
    execute(
        "unlearn",
        served,
        unlearn_params=sections["unlearn"],
        forget_ids=["train/0", "train/5"],
        data_hash=digest,
        dataset=data / "dataset",
        model=pulled / "model",
    )
    assert json.loads((served / "request/request.json").read_text())["ids"] == [
        "train/0",
        "train/5",
    ]
    assert (served / "unlearned/encoder.pt").is_file()
    execute(
        "evaluate",
        checked,
        evaluate_params=sections["evaluate"],
        data_hash=digest,
        dataset=data / "dataset",
        model=served / "unlearned",
    )
    lenient = {**registry, "max_forget_gap": 1.0, "max_attack_gap": 1.0}
    execute(
        "register",
        tmp_path / "forget-register",
        registry_params=lenient,
        candidate=served / "request",
        evaluation=checked / "evaluation",
        gate="deletion",
    )
    promoted = json.loads((tmp_path / "forget-register" / "metrics").read_text())
    assert promoted["action"] == "promote" and promoted["audit_passed"] is True
    assert promoted["champion_before"] == decision["model"] != promoted["champion_after"]


def test_mine_fan_out_through_kfps_executor_equals_the_offline_task(tmp_path: Path) -> None:
    """plan → one task per shard → merge of the shards as KFP hands a collected ParallelFor
    output to a list input; the graph equals the offline one-task mine."""
    section = {**section_arguments(profile_params("tiny"))["mine"], "num_shards": 2}
    plan = execute("mine-plan", tmp_path / "plan", mine_params=section)
    indices = plan["parameterValues"]["Output"]  # a return value, as KFP hands it on
    assert indices == [0, 1]
    shards = []
    for index in reversed(indices):  # completion order must not matter
        task_dir = tmp_path / f"shard-{index}"
        output = execute("mine-shard", task_dir, mine_params=section, index=index)
        assert ui(output)["videos"] == 1
        shards.append(task_dir / "shard")
    merged = execute("mine-merge", tmp_path / "merge", mine_params=section, shards=shards)
    assert ui(merged)["videos"] == 2
    execute("mine", tmp_path / "single", mine_params=section)
    for name in ("graph/nodes.csv", "graph/edges.csv"):
        fanned = (tmp_path / "merge/mined" / name).read_bytes()
        assert fanned == (tmp_path / "single/mined" / name).read_bytes(), name


def test_bad_params_end_in_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        execute("data", tmp_path / "d", data_params={"sorce": "synthetic"})
    message = str(exited.value.code)
    assert (
        message.startswith("error: invalid pipeline parameter 'data'") and "data.sorce" in message
    )
    assert not (tmp_path / "d" / "dataset").exists()


def test_a_dataset_that_does_not_match_the_cache_key_is_refused(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="content hash"):
        execute(
            "pretrain",
            tmp_path / "t",
            pretrain_params={},
            data_hash="f" * 64,
            dataset=tiny_dataset,
            mined=tiny_dataset,
        )
    assert not (tmp_path / "t" / "model").exists()


def _status(state: str, message: str = "") -> dict[str, Any]:
    """A ``PipelineTaskFinalStatus`` as KFP's driver hands it to an exit task."""
    return {
        "state": state,
        "pipelineJobResourceName": "projects/p/runs/r",
        "pipelineTaskName": "run",
        "error": {"code": 9, "message": message} if message else {},
    }


def test_the_exit_task_records_a_failed_run_in_the_registry_and_the_pushgateway(
    tmp_path: Path, pushgateway_service: PushgatewayService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome task (the pipelines' dsl.ExitHandler) through KFP's executor: a failed run of
    a pipeline with a registry becomes a "failed" decision naming the run and the error; a
    succeeded run, or one without a registry, records nothing; every run pushes ``failed``
    (0/1) under its run id to a real Pushgateway."""
    from prometheus_client.parser import text_string_to_metric_families

    from selfsup.registry.register import open_registry

    monkeypatch.setenv("SELFSUP_PUSHGATEWAY", pushgateway_service.address)

    registry = {"uri": str(tmp_path / "registry")}
    execute("outcome", tmp_path / "ok", status=_status("SUCCEEDED"), registry_params=registry,
            run_id="run-1")  # fmt: skip
    assert not (tmp_path / "registry").exists() or not open_registry(registry["uri"]).decisions()
    execute("outcome", tmp_path / "train", status=_status("FAILED", "pretrain: OOMKilled"),
            registry_params={}, run_id="run-2")  # fmt: skip
    assert not (tmp_path / "registry").exists() or not open_registry(registry["uri"]).decisions()
    execute("outcome", tmp_path / "bad", status=_status("FAILED", "pretrain: OOMKilled"),
            registry_params=registry, run_id="run-3")  # fmt: skip
    (decision,) = open_registry(registry["uri"]).decisions()
    assert decision["action"] == "failed" and decision["run"] == "run-3"
    assert decision["reason"] == "pretrain: OOMKilled"
    failed = {
        sample.labels["run_id"]: sample.value
        for family in text_string_to_metric_families(pushgateway_service.metrics_text())
        for sample in family.samples
        if sample.labels.get("stage") == "outcome" and sample.labels.get("name") == "failed"
    }
    assert {k: failed[k] for k in ("run-1", "run-2", "run-3")} == {
        "run-1": 0.0,
        "run-2": 1.0,
        "run-3": 1.0,
    }


def test_validate_puts_the_knobs_back_and_refuses_a_bad_value_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The up-front task through KFP's executor: the typed knobs land in their sections (read
    back from the output parameters KFP wrote), and a bad knob or struct value is one line."""
    sections = section_arguments(profile_params("tiny"))
    pretrain = {k: v for k, v in sections["pretrain"].items() if k not in ("epochs", "method")}
    output = execute("validate", tmp_path / "ok", pretrain_params=pretrain,
                     data_params=sections["data"], epochs=7, method="byol")  # fmt: skip
    checked = output["parameterValues"]
    assert checked["pretrain_params"] == {**pretrain, "epochs": 7, "method": "byol"}
    assert checked["data_params"] == sections["data"] and checked["unlearn_params"] == {}
    for bad in ({"epochs": 0}, {"method": "simclr2"}):
        with pytest.raises(SystemExit) as error:
            execute("validate", tmp_path / "bad", pretrain_params=pretrain, **bad)
        message = str(error.value)
        assert message.startswith("error: invalid pipeline parameter 'pretrain'")
        assert "\n" not in message and next(iter(bad)) in message


def test_validate_without_the_pretrain_section_ignores_the_unset_integer_knobs(
    tmp_path: Path,
) -> None:
    """The forget pipeline has no pretrain section: its validate task leaves epochs/batch_size
    at the unset default (-1, since kfp.local casts integer inputs with int()), and that is not
    an error; the same -1 given with the section is refused."""
    sections = section_arguments(profile_params("tiny"))
    output = execute("validate", tmp_path / "ok", unlearn_params=sections["unlearn"])
    assert output["parameterValues"]["pretrain_params"] == {}
    knobless = {k: v for k, v in sections["pretrain"].items() if k != "epochs"}  # as wired
    with pytest.raises(SystemExit, match="epochs"):
        execute("validate", tmp_path / "bad", pretrain_params=knobless, epochs=-1)
