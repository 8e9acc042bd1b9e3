"""`selfsup pipeline submit/schedule` take each setting from its flag or, by name, from its
environment variable (the retrain CronJob's ConfigMap); parsed by the real CLI parser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from selfsup.deploy.workloads import parse_selfsup

ENV = {
    "SELFSUP_KFP_HOST": "http://kfp:8888",
    "SELFSUP_KFP_NAMESPACE": "team",
    "SELFSUP_KFP_PIPELINE": "retrain",
    "SELFSUP_KFP_EXPERIMENT": "nightly",
    "SELFSUP_PARAMS": "/config/params.yaml",
    "SELFSUP_IMAGE": "r/selfsup:1-cpu",
    "SELFSUP_GPU_IMAGE": "r/selfsup:1-cuda",
    "SELFSUP_GPUS": "2",
    "SELFSUP_GPU_TYPE": "NVIDIA-H100-80GB-HBM3",
}


def _parse(args: list[str]) -> dict[str, object]:
    return parse_selfsup(["pipeline", "submit", *args], os.environ)[1]


def test_submit_reads_every_setting_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    params = _parse([])
    assert params["host"] == "http://kfp:8888" and params["namespace"] == "team"
    assert params["pipeline"] == "retrain" and params["experiment"] == "nightly"
    assert params["params"] == Path("/config/params.yaml")
    assert (params["image"], params["gpu_image"]) == ("r/selfsup:1-cpu", "r/selfsup:1-cuda")
    assert params["gpus"] == 2 and params["gpu_type"] == "NVIDIA-H100-80GB-HBM3"


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFSUP_GPUS", "2")
    monkeypatch.setenv("SELFSUP_KFP_HOST", "http://kfp:8888")
    params = _parse(["--gpus=0", "--host=http://other:80"])
    assert params["gpus"] == 0 and params["host"] == "http://other:80"


def test_an_invalid_variable_is_refused_like_its_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFSUP_KFP_HOST", "http://kfp:8888")
    monkeypatch.setenv("SELFSUP_GPUS", "-1")
    with pytest.raises(typer.BadParameter, match="greater than or equal to 0"):
        _parse([])
