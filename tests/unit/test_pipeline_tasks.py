"""The shared task layer: metric flattening, params sections, and the executor output file
checked against KFP's own Python executor (the reference for what the UI reads)."""

# No `from __future__ import annotations`: KFP reads the reference function's annotations.

import json
from pathlib import Path
from typing import Any

import pytest

from selfsup.errors import ConfigError, IntegrityError
from selfsup.pipeline import tasks
from selfsup.pipeline.errors import PipelineError
from selfsup.pipeline.executor_output import parse_executor_input, write_executor_output


def _flatten_by_hand(metrics: dict[str, Any]) -> dict[str, float]:
    """An explicit stack-based walk, independent of the recursive implementation."""
    out: dict[str, float] = {}
    stack: list[tuple[str, Any]] = [(k, v) for k, v in metrics.items()]
    while stack:
        name, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{name}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{name}.{i}", v) for i, v in enumerate(value))
        elif type(value) in (int, float, bool):
            out[name] = float(value)
    return out


def test_flat_metrics_matches_an_explicit_walk() -> None:
    metrics = {
        "trained": {"knn_top1": 0.5, "rankme": 9.4, "per_class": {"a": 1, "b": 0}},
        "loss_per_epoch": [4.1, 3.2],
        "labeled": True,
        "note": "dropped",
        "missing": None,
        "images": 10,
    }
    flat = tasks.flat_metrics(metrics)
    assert flat == _flatten_by_hand(metrics)
    assert flat["loss_per_epoch.1"] == 3.2 and flat["labeled"] == 1.0
    assert "note" not in flat and "missing" not in flat


def test_section_params_validates_and_names_the_bad_key() -> None:
    assert tasks.section_params("evaluate", {"knn_k": 3.0}).knn_k == 3  # KFP structs send floats
    with pytest.raises(ConfigError, match=r"evaluate\.knn_kk"):
        tasks.section_params("evaluate", {"knn_kk": 3})
    with pytest.raises(ConfigError, match=r"pretrain\.epochs"):
        tasks.section_params("pretrain", {"epochs": -1})


def test_nulls_key_must_list_names() -> None:
    with pytest.raises(ConfigError, match="_nulls must list key names"):
        tasks.section_params("pretrain", {tasks.NULLS_KEY: "max_images"})


def _executor_input(tmp_path: Path) -> dict[str, Any]:
    def artifact(name: str, schema: str) -> dict[str, Any]:
        return {
            "artifacts": [
                {
                    "name": name,
                    "type": {"schemaTitle": schema, "schemaVersion": "0.0.1"},
                    "uri": str(tmp_path / "root" / name),
                    "metadata": {},
                }
            ]
        }

    return {
        "inputs": {},
        "outputs": {
            "artifacts": {
                "metrics": artifact("metrics", "system.Metrics"),
                "model": artifact("model", "system.Model"),
            },
            "outputFile": str(tmp_path / "executor_output.json"),
        },
    }


def test_executor_output_equals_what_kfps_python_executor_writes(tmp_path: Path) -> None:
    from kfp import dsl
    from kfp.dsl.executor import Executor

    values = {"trained.knn_top1": 0.75, "loss.0": 3.5, "images": 64.0}

    def reference(metrics: dsl.Output[dsl.Metrics], model: dsl.Output[dsl.Model]) -> None:
        for name, value in values.items():
            metrics.log_metric(name, value)

    reference_input = _executor_input(tmp_path / "reference")
    Executor(reference_input, reference).execute()
    expected = json.loads(Path(reference_input["outputs"]["outputFile"]).read_text())

    ours_input = _executor_input(tmp_path / "reference")  # same URIs, so the files compare
    ours_input["outputs"]["outputFile"] = str(tmp_path / "ours.json")
    written = write_executor_output(ours_input, {"metrics": values})
    assert written is not None
    assert json.loads(written.read_text()) == expected


def test_executor_output_without_output_file_writes_nothing(tmp_path: Path) -> None:
    assert write_executor_output({"outputs": {"artifacts": {}}}, {}) is None


def test_parse_executor_input_rejects_non_kfp_input() -> None:
    with pytest.raises(PipelineError, match="not JSON"):
        parse_executor_input("{{$}}")
    with pytest.raises(PipelineError, match="no 'outputs'"):
        parse_executor_input('{"inputs": {}}')


def test_check_data_hash_refuses_a_changed_dataset(tiny_dataset: Path) -> None:
    from selfsup.data.shards import read_dataset_manifest

    actual = read_dataset_manifest(tiny_dataset)["content_hash"]
    tasks.check_data_hash(tiny_dataset, actual)  # the right hash passes
    with pytest.raises(IntegrityError, match="re-run the pipeline without cache"):
        tasks.check_data_hash(tiny_dataset, "0" * 64)


def test_section_arguments_keep_a_null_that_overrides_a_default() -> None:
    from selfsup.config import profile_params
    from selfsup.pipeline.train import section_arguments

    gpu = section_arguments(profile_params("gpu"))
    assert "max_images" not in gpu["pretrain"]  # KFP structs cannot hold null ...
    assert gpu["pretrain"][tasks.NULLS_KEY] == ["max_images"]  # ... so it is listed instead
    assert "archive" not in gpu["data"] and tasks.NULLS_KEY not in gpu["data"]  # default null
    assert tasks.section_params("pretrain", gpu["pretrain"]).max_images is None
    for section, values in gpu.items():  # and every section round-trips to the same params
        assert tasks.section_params(section, values) == getattr(profile_params("gpu"), section)


def test_arguments_of_every_profile_are_valid_kfp_struct_values() -> None:
    from kfp.compiler.pipeline_spec_builder import to_protobuf_value

    from selfsup.config import PROFILES, profile_params
    from selfsup.pipeline.train import pipeline_arguments

    for profile in PROFILES:  # the conversion KFP applies to defaults and local arguments
        for value in pipeline_arguments(profile_params(profile)).values():
            to_protobuf_value(value)  # raises on null or unsupported types


def test_input_artifact_paths_map_remote_uris_like_kfps_launcher() -> None:
    from selfsup.pipeline.executor_output import input_artifact_paths

    executor_input = {
        "inputs": {
            "artifacts": {
                "shards": {
                    "artifacts": [
                        {"uri": "s3://bucket/run/shard-0"},
                        {"uri": "minio://mlpipeline/v2/shard-1"},
                        {"uri": "gs://b/shard-2"},
                    ]
                }
            }
        }
    }
    assert input_artifact_paths(executor_input, "shards") == [
        Path("/s3/bucket/run/shard-0"),
        Path("/minio/mlpipeline/v2/shard-1"),
        Path("/gcs/b/shard-2"),
    ]
