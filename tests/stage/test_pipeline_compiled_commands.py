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
    spec: dict[str, Any],
    root: Path,
    values: dict[str, Any],
) -> str:
    """One argument as the launcher would pass it."""
    if arg == "{{$}}":
        artifacts = {
            name: {"artifacts": [{"name": name, "uri": str(root / task / name), "metadata": {}}]}
            for name in spec["components"][f"comp-{task}"]["outputDefinitions"].get("artifacts", {})
        }
        output = {"artifacts": artifacts, "outputFile": str(root / task / "executor_output.json")}
        return json.dumps({"outputs": output})
    match = _PLACEHOLDER.match(arg)
    if match is None:
        return arg  # a literal option name
    side, kind, name, _ = match.groups()
    if side == "outputs":
        return str(root / task / name)
    inputs = spec["root"]["dag"]["tasks"][task]["inputs"][kind][name]
    if kind == "artifacts":
        source = inputs["taskOutputArtifact"]
        return str(root / source["producerTask"] / source["outputArtifactKey"])
    if "componentInputParameter" in inputs:
        value = values[inputs["componentInputParameter"]]
        return json.dumps(value) if isinstance(value, dict) else str(value)
    source = inputs["taskOutputParameter"]
    return (root / source["producerTask"] / source["outputParameterKey"]).read_text()


def test_compiled_commands_run_the_tiny_chain(tmp_path: Path) -> None:
    spec = next(yaml.safe_load_all(pipeline_yaml("train")))
    values = pipeline_arguments(profile_params("tiny"))
    for task in ("data", "pretrain", "evaluate"):  # the DAG's topological order
        assert set(spec["root"]["dag"]["tasks"][task].get("dependentTasks", [])) <= {
            "data",
            "pretrain",
        }
        container = spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]
        assert container["command"][0] == "selfsup"
        args = [_resolve(a, task, spec, tmp_path, values) for a in container["args"]]
        (tmp_path / task).mkdir()
        result = runner.invoke(app, [*container["command"][1:], *args])
        assert result.exit_code == 0, f"{task}: {result.output}"

    evaluation = json.loads((tmp_path / "evaluate/evaluation/metrics.json").read_text())
    assert json.loads((tmp_path / "evaluate/metrics").read_text()) == evaluation
    ui = json.loads((tmp_path / "evaluate/executor_output.json").read_text())
    metadata = ui["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metadata["trained.knn_top1"] == evaluation["trained"]["knn_top1"]
    assert (tmp_path / "evaluate/report").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "pretrain/model/encoder.pt").is_file()
