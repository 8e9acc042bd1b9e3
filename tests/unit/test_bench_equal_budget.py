"""bench/equal_budget.py: the time-to-accuracy arithmetic against hand-computed examples, both
arms starting from the same weights, and a run of the whole bench on a tiny dataset (seconds).

lightly is in the ``dev`` extra, so the bench imports in every test environment ``make test``
builds; where it does not, these tests fail on the import, saying what to install."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from selfsup.config import profile_params
from selfsup.data import stage as data_stage

BENCH = Path(__file__).parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench imports its sibling pretrain_throughput
    try:
        spec = importlib.util.spec_from_file_location("equal_budget", BENCH / "equal_budget.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_crossing_interpolates_between_the_epochs_around_the_target(bench: ModuleType) -> None:
    knn = [0.1, 0.3, 0.5, 0.6]
    assert bench.crossing(knn, 0.4) == pytest.approx(1.5)  # halfway from 0.3 to 0.5
    assert bench.crossing(knn, 0.55) == pytest.approx(2.5)
    assert bench.crossing(knn, 0.6) == pytest.approx(3.0)  # reached exactly at the last epoch
    assert bench.crossing(knn, 0.05) == 0.0
    assert bench.crossing(knn, 0.61) is None
    # The first crossing counts, not a later dip and recovery.
    assert bench.crossing([0.0, 0.5, 0.4, 0.8], 0.45) == pytest.approx(0.9)


def test_at_and_value_at_time(bench: ModuleType) -> None:
    wall = [0.0, 10.0, 20.0, 40.0]
    assert bench.at(wall, 1.5) == pytest.approx(15.0)
    assert bench.at(wall, 2.25) == pytest.approx(25.0)
    assert bench.at(wall, 3.0) == 40.0
    with pytest.raises(ValueError):
        bench.at(wall, 3.5)
    knn = [0.1, 0.3, 0.5, 0.6]
    assert bench.value_at_time(wall, knn, 5.0) == pytest.approx(0.2)
    assert bench.value_at_time(wall, knn, 30.0) == pytest.approx(0.55)
    assert bench.value_at_time(wall, knn, 99.0) == 0.6  # finished: keeps its final kNN


def test_summary_of_hand_made_curves(bench: ModuleType) -> None:
    selfsup = {"wall": [0.0, 10.0, 20.0, 30.0], "cpu": [0.0, 16.0, 32.0, 48.0]}
    selfsup["knn"] = [0.1, 0.3, 0.5, 0.6]
    lightly = {"wall": [0.0, 20.0, 40.0, 60.0], "cpu": [0.0, 40.0, 80.0, 120.0]}
    lightly["knn"] = [0.1, 0.2, 0.35, 0.4]
    s = bench.summarize(selfsup, lightly)
    assert s["target_knn"] == 0.4 and s["reached"] is True
    # selfsup reaches 0.4 halfway through epoch 2: 15 s wall, 24 s CPU; lightly at its end.
    assert s["time_to_target"]["selfsup"] == pytest.approx(
        {"epochs": 1.5, "wall_s": 15.0, "cpu_s": 24.0}
    )
    assert s["time_to_target"]["lightly"] == pytest.approx(
        {"epochs": 3.0, "wall_s": 60.0, "cpu_s": 120.0}
    )
    assert s["wall_ratio_to_target"] == pytest.approx(0.25)
    assert s["cpu_ratio_to_target"] == pytest.approx(0.2)
    # At lightly's final 60 s selfsup has finished (30 s): its final kNN.
    assert s["knn_at_lightly_final_wall"] == pytest.approx(
        {"wall_s": 60.0, "selfsup": 0.6, "lightly": 0.4}
    )
    assert s["knn_gain_at_equal_wall"] == pytest.approx(0.2)
    # At selfsup's final 30 s lightly is halfway through epoch 2: (0.2 + 0.35) / 2.
    assert s["knn_at_selfsup_final_wall"]["lightly"] == pytest.approx(0.275)
    assert s["final"]["wall_ratio"] == pytest.approx(0.5)
    assert s["final"]["cpu_ratio"] == pytest.approx(0.4)
    # Swapped, selfsup never reaches the other's final kNN.
    missed = bench.summarize(lightly, selfsup)
    assert missed["reached"] is False and missed["wall_ratio_to_target"] is None
    assert missed["time_to_target"]["selfsup"]["wall_s"] is None
    assert "selfsup: not reached" in bench.render(
        {"order": ["selfsup", "lightly"], "selfsup": lightly, "lightly": selfsup, "summary": missed}
    )


def test_both_arms_start_from_the_stages_weights(bench: ModuleType, tiny_dataset: Path) -> None:
    from selfsup.models.artifact import data_normalization
    from selfsup.train import stage
    from selfsup.train.methods import Context, Simclr

    params = bench.bench_params("tiny", ["pretrain.seed=3"], None)
    normalization = data_normalization(tiny_dataset)[0]
    ctx = Context(params.pretrain)
    theirs = stage._training(ctx, Simclr(ctx, tiny_dataset, None), normalization).model.net
    _, ours = bench.lightly_model(params, normalization, torch.device("cpu"))
    a, b = list(theirs.state_dict().values()), list(ours.state_dict().values())
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    initial = bench.initial_encoder_state(params, tiny_dataset)
    encoder = theirs.encoder.state_dict()
    assert initial.keys() == encoder.keys()
    assert all(torch.equal(initial[k], encoder[k]) for k in encoder)


def test_the_bench_runs_end_to_end_on_a_tiny_dataset(bench: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data_stage.run(params=profile_params("tiny").data, out=data)
    jsonl = tmp_path / "runs.jsonl"
    argv = ["--data", str(data), "--profile", "tiny", "--set", "pretrain.epochs=2"]
    record = bench.main([*argv, "--seed", "1", "--order", "lightly-first", "--jsonl", str(jsonl)])
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == [
        json.loads(json.dumps(record))
    ]
    assert record["order"] == ["lightly", "selfsup"] and record["pretrain"]["seed"] == 1
    for name in ("selfsup", "lightly"):
        arm = record[name]
        assert len(arm["wall"]) == len(arm["cpu"]) == len(arm["knn"]) == 3  # start + 2 epochs
        assert arm["wall"][0] == arm["cpu"][0] == 0.0
        assert all(b > a for a, b in zip(arm["wall"], arm["wall"][1:], strict=False))
        assert all(b >= a for a, b in zip(arm["cpu"], arm["cpu"][1:], strict=False))
        assert all(0.0 <= k <= 1.0 for k in arm["knn"])
        assert len(arm["epoch_seconds"]) == 2
    assert record["selfsup"]["knn"][0] == record["lightly"]["knn"][0]  # the same initial weights
    summary = record["summary"]
    assert summary["target_knn"] == record["lightly"]["knn"][-1]
    assert summary["time_to_target"]["lightly"]["wall_s"] is not None
    assert summary == bench.summarize(record["selfsup"], record["lightly"])


def test_the_bench_refuses_another_method(bench: ModuleType) -> None:
    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError, match="compares SimCLR"):
        bench.bench_params("tiny", ["pretrain.method=byol"], None)
    with pytest.raises(ConfigError, match=r"pretrain\.epochs"):
        bench.bench_params("tiny", ["pretrain.epochs=0"], None)
