"""`selfsup pipeline compile`: options reach the YAML; the goldens always use the defaults."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from selfsup.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_compile_options_reach_the_yaml_and_goldens_stay_default(tmp_path: Path) -> None:
    out = tmp_path / "train.yaml"
    result = runner.invoke(app, [
        "pipeline", "compile", "--out", str(out), "--image", "registry.test/selfsup:9.9-cpu",
        "--gpus", "0", "--goldens", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = next(yaml.safe_load_all(out.read_text()))
    for executor in spec["deploymentSpec"]["executors"].values():
        assert executor["container"]["image"] == "registry.test/selfsup:9.9-cpu"
        assert "accelerator" not in executor["container"]["resources"]
    golden = tmp_path / "pipelines/golden/train.yaml"
    assert golden.read_text() == (REPO / "pipelines/golden/train.yaml").read_text()


def test_unknown_pipeline_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["pipeline", "compile", "--pipeline", "deploy", "--out", str(tmp_path / "f.yaml")]
    )
    assert result.exit_code == 2 and "'deploy' is not one of" in result.output
    assert not (tmp_path / "f.yaml").exists()


def test_the_clis_pipeline_choices_are_the_pipelines() -> None:
    """cli_pipeline lists them without importing kfp; the definitions are dags.PIPELINES."""
    import typing

    from selfsup.cli_pipeline import Pipelines
    from selfsup.pipeline.dags import PIPELINES

    assert set(typing.get_args(Pipelines)) == set(PIPELINES)


def test_negative_counts_are_refused() -> None:
    for args in (
        ["pipeline", "compile", "--gpus", "-1"],
        ["mine", "--shard", "-1"],
        ["pretrain", "--metrics-port", "0", "--data", "d", "--out", "o"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Invalid value" in result.output, (args, result.output)


def test_forget_request_goes_with_the_forget_pipeline_only(tmp_path: Path) -> None:
    request = tmp_path / "forget.txt"
    request.write_text("train/3\n")
    params = str(REPO / "params.yaml")
    base = ["pipeline", "submit", "--host", "http://127.0.0.1:9", "--params", params]
    missing = runner.invoke(app, [*base, "--pipeline", "forget"])
    assert missing.exit_code == 2 and "--forget FILE goes with --pipeline forget" in missing.output
    stray = runner.invoke(app, [*base, "--pipeline", "train", "--forget", str(request)])
    assert stray.exit_code == 2 and "--forget FILE goes with --pipeline forget" in stray.output
    request.write_text("test/3\n")
    malformed = runner.invoke(app, [*base, "--pipeline", "forget", "--forget", str(request)])
    assert malformed.exit_code == 2 and "unknown sample id" in malformed.output
