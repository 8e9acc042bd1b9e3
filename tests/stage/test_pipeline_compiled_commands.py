"""The compiled pipeline's container commands work: a minimal stand-in for KFP's launcher reads
each executor's command and args from the compiled `train` YAML, resolves the placeholders the
way the launcher does, and runs them through the `selfsup` CLI on the tiny profile — so a drift
between the components' args and the `selfsup pipeline task` options fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import profile_params
from selfsup.pipeline.compile import pipeline_yaml
from selfsup.pipeline.train import pipeline_arguments

runner = CliRunner()
_PLACEHOLDER = re.compile(
    r"^\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](\.path|\.output_file)?\}\}$"
)


def _resolve(
    arg: str,
    task: str,
    task_spec: dict[str, Any],
    spec: dict[str, Any],
    root: Path,
    values: dict[str, Any],
    collected: dict[str, list[Path]],
) -> str:
    """One argument as the launcher would pass it (``collected``: list inputs' directories)."""
    component = spec["components"][task_spec["componentRef"]["name"]]
    if arg == "{{$}}":
        artifacts = {
            name: {"artifacts": [{"name": name, "uri": str(root / task / name), "metadata": {}}]}
            for name in component["outputDefinitions"].get("artifacts", {})
        }
        output = {"artifacts": artifacts, "outputFile": str(root / task / "executor_output.json")}
        inputs = {
            name: {"artifacts": [{"uri": str(p), "metadata": {}} for p in paths]}
            for name, paths in collected.items()
        }
        return json.dumps({"inputs": {"artifacts": inputs}, "outputs": output})
    match = _PLACEHOLDER.match(arg)
    if match is None:
        return arg  # a literal option name
    side, kind, name, _ = match.groups()
    if side == "outputs":
        return str(root / task / name)
    inputs = task_spec["inputs"][kind][name]
    if kind == "artifacts":
        source = inputs["taskOutputArtifact"]
        return str(root / source["producerTask"] / source["outputArtifactKey"])
    if "componentInputParameter" in inputs:
        value = values[inputs["componentInputParameter"]]
        return json.dumps(value) if isinstance(value, dict) else str(value)
    source = inputs["taskOutputParameter"]
    return (root / source["producerTask"] / source["outputParameterKey"]).read_text()


def _run(
    task: str,
    task_spec: dict[str, Any],
    spec: dict[str, Any],
    root: Path,
    values: dict[str, Any],
    collected: dict[str, list[Path]] | None = None,
) -> None:
    executor = spec["components"][task_spec["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][executor]["container"]
    assert container["command"][0] == "selfsup"
    args = [
        _resolve(a, task, task_spec, spec, root, values, collected or {}) for a in container["args"]
    ]
    (root / task).mkdir()
    result = runner.invoke(app, [*container["command"][1:], *args])
    assert result.exit_code == 0, f"{task}: {result.output}"


def test_compiled_commands_run_the_tiny_chain(tmp_path: Path) -> None:
    spec = next(yaml.safe_load_all(pipeline_yaml("train")))
    tasks = spec["root"]["dag"]["tasks"]
    tiny = profile_params("tiny")
    params = tiny.model_copy(update={"mine": tiny.mine.model_copy(update={"num_shards": 2})})
    values = pipeline_arguments(params)
    _run("data", tasks["data"], spec, tmp_path, values)
    _run("mine-plan", tasks["mine-plan"], spec, tmp_path, values)
    # The loop: its body's parameters are the loop component's inputs (pipeline channels).
    loop = tasks["for-loop-1"]
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]["mine-shard"]
    item = loop["parameterIterator"]["itemInput"]
    channels = {
        name: values[source["componentInputParameter"]]
        for name, source in loop["inputs"]["parameters"].items()
        if "componentInputParameter" in source
    }
    shards = json.loads((tmp_path / "mine-plan/shards").read_text())
    assert shards == [0, 1]
    for index in shards:
        _run(f"mine-shard-{index}", body, spec, tmp_path, {**channels, item: index})
    collected = {"shards": [tmp_path / f"mine-shard-{i}" / "shard" for i in shards]}
    _run("mine-merge", tasks["mine-merge"], spec, tmp_path, values, collected)
    for task in ("pretrain", "evaluate", "compress", "distill"):
        assert set(tasks[task].get("dependentTasks", [])) <= {"data", "mine-merge", "pretrain"}
        _run(task, tasks[task], spec, tmp_path, values)
    assert (tmp_path / "distill/distilled/images.pt").is_file()
    assert (tmp_path / "compress/compressed/manifest.json").is_file()

    assert (tmp_path / "mine-merge/mined/graph/edges.csv").is_file()
    evaluation = json.loads((tmp_path / "evaluate/evaluation/metrics.json").read_text())
    assert json.loads((tmp_path / "evaluate/metrics").read_text()) == evaluation
    ui = json.loads((tmp_path / "evaluate/executor_output.json").read_text())
    metadata = ui["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metadata["trained.knn_top1"] == evaluation["trained"]["knn_top1"]
    assert (tmp_path / "evaluate/report").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "pretrain/model/encoder.pt").is_file()
