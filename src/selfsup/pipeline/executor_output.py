"""The executor output file of a container task, so the Kubeflow UI shows the stage's metrics.

A container component's output artifacts reach KFP's metadata store with whatever metadata the
task writes to ``executor_input.outputs.outputFile``; without it, a Metrics artifact is an empty
box in the UI. The task receives the executor input through the ``{{$}}`` placeholder and writes
the same JSON that KFP's own Python executor writes for a lightweight component (a test checks
the two agree).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selfsup.pipeline.errors import PipelineError
from selfsup.store import atomic_write_json


def parse_executor_input(text: str) -> dict[str, Any]:
    """The executor input JSON KFP passes as ``{{$}}``; a clear error when it is not that."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"--executor-input is not JSON ({exc}); KFP passes it as '{{{{$}}}}'"
        raise PipelineError(message) from None
    if not isinstance(value, dict) or "outputs" not in value:
        raise PipelineError("--executor-input has no 'outputs': expected KFP's executor input")
    return value


def write_executor_output(
    executor_input: Mapping[str, Any], metadata: Mapping[str, Mapping[str, Any]]
) -> Path | None:
    """Write ``executor_input.outputs.outputFile`` with ``metadata[name]`` on each output artifact.

    Artifacts not named in ``metadata`` keep empty metadata. Returns the file written, or None
    when the executor input names no output file (nothing to report).
    """
    outputs = executor_input.get("outputs", {})
    output_file = outputs.get("outputFile")
    if not output_file:
        return None
    artifacts: dict[str, Any] = {}
    for name, entry in outputs.get("artifacts", {}).items():
        artifact = entry["artifacts"][0]
        artifacts[name] = {
            "artifacts": [
                {
                    "name": artifact.get("name", ""),
                    "uri": artifact["uri"],
                    "metadata": dict(metadata.get(name, {})),
                }
            ]
        }
    path = Path(output_file)
    atomic_write_json(path, {"artifacts": artifacts})
    return path


def input_artifact_paths(executor_input: Mapping[str, Any], name: str) -> list[Path]:
    """Local paths of the artifacts of the (list) input ``name``, in the order KFP lists them.

    A container component cannot name the files of an ``Input[List[Artifact]]`` with a
    placeholder (kubeflow/pipelines#8484), so the task reads their URIs from the executor input
    and maps them the way KFP's launcher mounts them (``s3://b/k`` → ``/s3/b/k``, ``minio://`` →
    ``/minio/``, ``gs://`` → ``/gcs/``) — KFP's own mapping, ``dsl.Artifact.path``.
    """
    from kfp import dsl

    entry = executor_input.get("inputs", {}).get("artifacts", {}).get(name)
    if entry is None:
        raise PipelineError(f"the executor input has no input artifact {name!r}")
    return [
        Path(dsl.Artifact(uri=a["uri"], metadata=a.get("metadata", {})).path)
        for a in entry.get("artifacts", [])
    ]
