"""bench/gpu_simclr.py in ``--smoke`` mode on the CPU, so the GPU benchmark is not dead code:
both training loops and the kNN run, and the numbers it reports are consistent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "gpu_simclr.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_simclr", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_mode_runs_both_loops_and_the_knn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    result = _load().main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["device"] == "cpu" and result["smoke"] is True
    assert result["selfsup_images_per_second"] > 0 and result["lightly_images_per_second"] > 0
    ratio = result["selfsup_images_per_second"] / result["lightly_images_per_second"]
    assert result["speedup"] == pytest.approx(ratio)
    assert result["epochs"] >= 1 and 0.0 <= result["knn_top1"] <= 1.0
    assert result["reached"] == (result["knn_top1"] >= result["knn_target"])
    assert result["seconds_to_result"] >= result["train_seconds"] > 0
    assert "lightly reference loop" in capsys.readouterr().out
