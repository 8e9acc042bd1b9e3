"""`selfsup pipeline task <stage>`, what the container components run: the tiny chain end to end
with KFP-style executor inputs, the UI metadata it writes, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import profile_params
from selfsup.data.shards import read_dataset_manifest
from selfsup.pipeline.tasks import flat_metrics
from selfsup.pipeline.train import section_arguments

runner = CliRunner()


def _executor_input(task_dir: Path, outputs: dict[str, str]) -> str:
    """A KFP executor input naming ``outputs`` (artifact name -> schema title) under task_dir."""
    artifacts = {
        name: {
            "artifacts": [
                {
                    "name": name,
                    "type": {"schemaTitle": schema},
                    "uri": str(task_dir / name),
                    "metadata": {},
                }
            ]
        }
        for name, schema in outputs.items()
    }
    return json.dumps(
        {"outputs": {"artifacts": artifacts, "outputFile": str(task_dir / "executor_output.json")}}
    )


def _invoke(args: list[str]) -> str:
    result = runner.invoke(app, ["pipeline", "task", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _ui_metrics(task_dir: Path) -> dict[str, Any]:
    output = json.loads((task_dir / "executor_output.json").read_text())
    return dict(output["artifacts"]["metrics"]["artifacts"][0]["metadata"])


def test_tiny_chain_through_the_container_entry_point(tmp_path: Path) -> None:
    sections = section_arguments(profile_params("tiny"))
    data_dir, train_dir, eval_dir = tmp_path / "data", tmp_path / "pretrain", tmp_path / "evaluate"

    _invoke([
        "data", "--params-json", json.dumps(sections["data"]),
        "--dataset", str(data_dir / "dataset"), "--metrics", str(data_dir / "metrics"),
        "--content-hash", str(data_dir / "content_hash"),
        "--executor-input", _executor_input(data_dir, {"dataset": "system.Dataset",
                                                       "metrics": "system.Metrics"}),
    ])  # fmt: skip
    digest = (data_dir / "content_hash").read_text()
    assert digest == read_dataset_manifest(data_dir / "dataset")["content_hash"]
    data_metrics = json.loads((data_dir / "metrics").read_text())
    assert data_metrics["images"] == {"train": 64, "test": 32}
    assert _ui_metrics(data_dir) == flat_metrics(data_metrics)

    _invoke([
        "pretrain", "--params-json", json.dumps(sections["pretrain"]), "--data-hash", digest,
        "--dataset", str(data_dir / "dataset"), "--model", str(train_dir / "model"),
        "--metrics", str(train_dir / "metrics"),
        "--executor-input", _executor_input(train_dir, {"model": "system.Model",
                                                        "metrics": "system.Metrics"}),
    ])  # fmt: skip
    assert (train_dir / "model" / "encoder.pt").is_file()
    train_metrics = json.loads((train_dir / "metrics").read_text())
    assert _ui_metrics(train_dir)["epochs"] == 2 == len(train_metrics["loss_per_epoch"])

    _invoke([
        "evaluate", "--params-json", json.dumps(sections["evaluate"]), "--data-hash", digest,
        "--dataset", str(data_dir / "dataset"), "--model", str(train_dir / "model"),
        "--metrics", str(eval_dir / "metrics"), "--report", str(eval_dir / "report"),
        "--evaluation", str(eval_dir / "evaluation"), "--confusion", str(eval_dir / "confusion"),
        "--executor-input", _executor_input(eval_dir, {"metrics": "system.Metrics",
                                                       "confusion": "system.ClassificationMetrics",
                                                       "report": "system.HTML",
                                                       "evaluation": "system.Artifact"}),
    ])  # fmt: skip
    evaluation = json.loads((eval_dir / "evaluation" / "metrics.json").read_text())
    assert json.loads((eval_dir / "metrics").read_text()) == evaluation
    assert (eval_dir / "report").read_bytes() == (eval_dir / "evaluation/report.html").read_bytes()
    ui = _ui_metrics(eval_dir)
    assert ui["trained.knn_top1"] == evaluation["trained"]["knn_top1"]
    assert 0.0 <= ui["trained.knn_top1"] <= 1.0
    # The confusion matrix the UI draws: the probe's test predictions, rows = true classes.
    output = json.loads((eval_dir / "executor_output.json").read_text())
    matrix = output["artifacts"]["confusion"]["artifacts"][0]["metadata"]["confusionMatrix"]
    assert json.loads((eval_dir / "confusion").read_text())["confusionMatrix"] == matrix
    rows = [r["row"] for r in matrix["rows"]]
    assert len(rows) == len(matrix["annotationSpecs"]) == evaluation["num_classes"]
    assert sum(map(sum, rows)) == evaluation["num_test"]
    correct = sum(rows[i][i] for i in range(len(rows)))
    assert correct / evaluation["num_test"] == pytest.approx(evaluation["trained"]["linear_top1"])

    registry = {"uri": str(tmp_path / "registry"), "knn_margin": 0.005, "rankme_margin": 0.0}
    for attempt in ("first", "again"):
        reg_dir = tmp_path / f"register-{attempt}"
        _invoke([
            "register", "--params-json", json.dumps(registry),
            "--model", str(train_dir / "model"), "--evaluation", str(eval_dir / "evaluation"),
            "--metrics", str(reg_dir / "metrics"),
            "--executor-input", _executor_input(reg_dir, {"metrics": "system.Metrics"}),
        ])  # fmt: skip
        decision = json.loads((reg_dir / "metrics").read_text())
        assert _ui_metrics(reg_dir)["promoted"] == float(attempt == "first")
        if attempt == "first":
            assert decision["champion_before"] is None
            assert decision["champion_after"] == decision["model"]
    assert (decision["action"], decision["reason"]) == ("keep", "already the champion")
    assert decision["champion"] == decision["model"]

    # The forget pipeline's tasks: pull the champion, unlearn two samples, evaluate, register.
    pulled, served, checked = tmp_path / "pull", tmp_path / "unlearn", tmp_path / "evaluate-u"
    _invoke([
        "pull", "--params-json", json.dumps(registry), "--ref", "champion",
        "--model", str(pulled / "model"), "--metrics", str(pulled / "metrics"),
    ])  # fmt: skip
    assert json.loads((pulled / "metrics").read_text())["model"] == decision["model"]
    _invoke([
        "unlearn", "--params-json", json.dumps(sections["unlearn"]),
        "--forget-ids", json.dumps(["train/0", "train/5"]), "--data-hash", digest,
        "--dataset", str(data_dir / "dataset"), "--model", str(pulled / "model"),
        "--unlearned", str(served / "unlearned"), "--request", str(served / "request"),
        "--metrics", str(served / "metrics"),
    ])  # fmt: skip
    record = json.loads((served / "request/request.json").read_text())
    assert record["ids"] == ["train/0", "train/5"]
    assert (served / "unlearned/encoder.pt").is_file()
    _invoke([
        "evaluate", "--params-json", json.dumps(sections["evaluate"]), "--data-hash", digest,
        "--dataset", str(data_dir / "dataset"), "--model", str(served / "unlearned"),
        "--metrics", str(checked / "metrics"), "--report", str(checked / "report"),
        "--evaluation", str(checked / "evaluation"),
    ])  # fmt: skip
    lenient = {**registry, "max_forget_gap": 1.0, "max_attack_gap": 1.0}
    forgot = tmp_path / "forget-register"
    _invoke([
        "forget-register", "--params-json", json.dumps(lenient),
        "--request", str(served / "request"), "--evaluation", str(checked / "evaluation"),
        "--metrics", str(forgot / "metrics"),
    ])  # fmt: skip
    promoted = json.loads((forgot / "metrics").read_text())
    assert promoted["action"] == "promote" and promoted["audit_passed"] is True
    assert promoted["champion_before"] == decision["model"] != promoted["champion_after"]
    again = runner.invoke(app, [
        "pipeline", "task", "forget-register", "--params-json", json.dumps(lenient),
        "--request", str(served / "request"), "--evaluation", str(checked / "evaluation"),
        "--metrics", str(tmp_path / "again"),
    ])  # fmt: skip
    assert again.exit_code == 2 and "serve it again" in again.output  # the champion moved on


def test_bad_params_json_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, [
        "pipeline", "task", "data", "--params-json", '{"sorce": "synthetic"}',
        "--dataset", str(tmp_path / "d"), "--metrics", str(tmp_path / "m"),
        "--content-hash", str(tmp_path / "h"),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "data.sorce" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()

    result = runner.invoke(app, [
        "pipeline", "task", "data", "--params-json", "[1, 2]",
        "--dataset", str(tmp_path / "d"), "--metrics", str(tmp_path / "m"),
        "--content-hash", str(tmp_path / "h"),
    ])  # fmt: skip
    assert result.exit_code == 2 and "JSON object" in result.output


def test_a_dataset_that_does_not_match_the_cache_key_is_refused(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, [
        "pipeline", "task", "pretrain", "--params-json", "{}", "--data-hash", "f" * 64,
        "--dataset", str(tiny_dataset), "--model", str(tmp_path / "model"),
        "--metrics", str(tmp_path / "m"),
    ])  # fmt: skip
    assert result.exit_code == 2 and "content hash" in result.output
    assert not (tmp_path / "model").exists()


def test_mine_fan_out_through_the_container_entry_points(tmp_path: Path) -> None:
    """plan → one task per shard → merge, the shard directories found through the executor
    input the way KFP lists a collected ParallelFor output; the result equals `selfsup mine`."""
    from selfsup.mining import stage
    from selfsup.pipeline.tasks import section_params

    section = {**section_arguments(profile_params("tiny"))["mine"], "num_shards": 2}
    _invoke([
        "mine-plan", "--params-json", json.dumps(section), "--shards", str(tmp_path / "plan"),
    ])  # fmt: skip
    indices = json.loads((tmp_path / "plan").read_text())
    assert indices == [0, 1]
    shard_dirs = []
    for index in reversed(indices):  # completion order must not matter
        task_dir = tmp_path / f"shard-{index}"
        _invoke([
            "mine-shard", "--params-json", json.dumps(section), "--index", str(index),
            "--shard", str(task_dir / "shard"), "--metrics", str(task_dir / "metrics"),
        ])  # fmt: skip
        assert json.loads((task_dir / "metrics").read_text())["videos"] == 1
        shard_dirs.append(task_dir / "shard")

    merge_dir = tmp_path / "merge"
    executor_input = json.loads(
        _executor_input(merge_dir, {"mined": "system.Dataset", "metrics": "system.Metrics"})
    )
    executor_input["inputs"] = {
        "artifacts": {
            "shards": {
                "artifacts": [
                    {"name": f"s{i}", "uri": str(d), "metadata": {}}
                    for i, d in enumerate(shard_dirs)
                ]
            }
        }
    }
    _invoke([
        "mine-merge", "--params-json", json.dumps(section), "--mined", str(merge_dir / "mined"),
        "--metrics", str(merge_dir / "metrics"), "--executor-input", json.dumps(executor_input),
    ])  # fmt: skip
    assert _ui_metrics(merge_dir)["videos"] == 2
    stage.run(section_params("mine", section), tmp_path / "single")
    for name in ("graph/nodes.csv", "graph/edges.csv"):
        merged = (merge_dir / "mined" / name).read_bytes()
        assert merged == (tmp_path / "single" / name).read_bytes(), name

    missing = runner.invoke(app, [
        "pipeline", "task", "mine-merge", "--params-json", json.dumps(section),
        "--mined", str(tmp_path / "x"), "--metrics", str(tmp_path / "m"),
        "--executor-input", json.dumps({"outputs": {}, "inputs": {"artifacts": {}}}),
    ])  # fmt: skip
    assert missing.exit_code == 2 and "no input artifact 'shards'" in missing.output
