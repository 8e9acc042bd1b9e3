"""`run-local` turns a failing task into one clear line (the runner's RuntimeError is wrapped)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from selfsup.cli import app

runner = CliRunner()


def test_failing_task_is_a_clear_error(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"data:\n  source: folder\n  folder: {tmp_path / 'no-such-folder'}\n")
    result = runner.invoke(
        app, ["pipeline", "run-local", "--params", str(params), "--root", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "local run failed" in result.output and "'data'" in result.output
    assert "error: " in result.output and "no-such-folder" in result.output  # the task's line
    assert "Traceback" not in result.output


def test_invalid_params_fail_before_anything_runs(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("pretrain:\n  epochs: zero\n")
    result = runner.invoke(
        app, ["pipeline", "run-local", "--params", str(params), "--root", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "pretrain.epochs" in result.output
    assert not (tmp_path / "out").exists()
