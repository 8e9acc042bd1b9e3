"""The `selfsup` CLI: bad input gets one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import load_params, profile_params

runner = CliRunner()


def _tiny_params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    result = runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_params_write_renders_the_profile(tmp_path: Path) -> None:
    assert load_params(_tiny_params(tmp_path)) == profile_params("tiny")


def test_unknown_param_key_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("pretrain:\n  lr: fast\n")
    result = runner.invoke(app, ["pretrain", "--params", str(bad), "--data", "d", "--out", "o"])
    assert result.exit_code == 2
    assert "pretrain.lr" in result.output and "Traceback" not in result.output


def test_missing_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    params = _tiny_params(tmp_path)
    result = runner.invoke(
        app,
        [
            "pretrain",
            "--params",
            str(params),
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not (tmp_path / "m").exists()


def test_chain_through_the_cli(tmp_path: Path) -> None:
    p = ["--params", str(_tiny_params(tmp_path))]
    data, model, report = tmp_path / "data", tmp_path / "model", tmp_path / "report"
    for args in (
        ["data", "prepare", *p, "--out", str(data)],
        ["pretrain", *p, "--data", str(data), "--out", str(model)],
        [
            "evaluate",
            *p,
            "--model",
            str(model),
            "--data",
            str(data),
            "--out",
            str(report),
            "--metrics",
            str(tmp_path / "eval.json"),
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics == json.loads((report / "metrics.json").read_text())
    assert set(metrics["trained"]) == {"knn_top1", "linear_top1", "linear_ece", "rankme"}
    table = runner.invoke(app, ["summary", str(tmp_path / "eval.json")])
    assert table.exit_code == 0, table.output
    knn_row = next(line for line in table.output.splitlines() if line.startswith("kNN top-1"))
    trained, random, raw, gain = (float(v) for v in knn_row.split()[-4:])
    assert trained == round(metrics["trained"]["knn_top1"], 4)
    assert random == round(metrics["random_init"]["knn_top1"], 4)
    assert raw == round(metrics["raw_pixels"]["knn_top1"], 4)
    assert gain == pytest.approx(trained - max(random, raw), abs=2e-4)


def test_store_verify_lists_the_broken_artifacts_and_exits_2(tmp_path: Path) -> None:
    from selfsup.store import sha256_file, write_manifest
    from selfsup.store.artifacts import blob_key

    store = tmp_path / "store"
    for name, data in (("a", b"first"), ("b", b"second")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "w.bin").write_bytes(data)
        write_manifest(tmp_path / name, "test", {})
        pushed = runner.invoke(
            app, ["store", "push", str(tmp_path / name), name, "--store", str(store)]
        )
        assert pushed.exit_code == 0, pushed.output
    assert runner.invoke(app, ["store", "verify", "--store", str(store)]).output == "ok a\nok b\n"
    (store / blob_key(sha256_file(tmp_path / "b" / "w.bin"))).write_bytes(b"rot")
    result = runner.invoke(app, ["store", "verify", "--store", str(store)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0] == "ok a" and lines[1].startswith("BROKEN b: w.bin: blob ")
    assert lines[2].startswith("error: 1 of 2 artifacts are broken (b); push each again")
    only = runner.invoke(app, ["store", "verify", "a", "--store", str(store)])
    assert (only.exit_code, only.output) == (0, "ok a\n")


def test_out_dot_and_a_users_folder_are_refused_in_one_line_and_left_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selfsup.store import write_manifest

    params = _tiny_params(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    result = runner.invoke(app, ["data", "prepare", "--params", str(params), "--out", "."])
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: output '.' must name a directory of its own, not this one"
    )
    assert [p.name for p in work.iterdir()] == ["notes.txt"]  # no .tmp or .old left behind

    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "w.bin").write_bytes(b"w")
    write_manifest(tmp_path / "art", "test", {})
    store = str(tmp_path / "store")
    assert (
        runner.invoke(
            app, ["store", "push", str(tmp_path / "art"), "a", "--store", store]
        ).exit_code
        == 0
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"precious")
    pulled = runner.invoke(app, ["store", "pull", "a", str(photos), "--store", store])
    assert pulled.exit_code == 2 and "is not a selfsup artifact (no manifest.json)" in pulled.output
    assert [p.name for p in photos.iterdir()] == ["cat.jpg"]


def test_version_params_write_force_and_set_on_a_stage(tmp_path: Path) -> None:
    from selfsup import __version__
    from selfsup.data.shards import read_dataset_manifest

    assert runner.invoke(app, ["--version"]).output == f"selfsup {__version__}\n"
    params = _tiny_params(tmp_path)
    again = runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(params)])
    assert again.exit_code == 2 and "exists; pass --force to replace it" in again.output
    forced = ["params", "write", "--profile", "default", "--out", str(params), "--force"]
    assert runner.invoke(app, forced).exit_code == 0
    assert load_params(params) == profile_params("default")
    prepared = runner.invoke(
        app,
        ["data", "prepare", "--params", str(params), "--out", str(tmp_path / "d"),
         "--set", "data.source=synthetic", "--set", "data.synthetic_train=8",
         "--set", "data.synthetic_test=4"],
    )  # fmt: skip
    assert prepared.exit_code == 0, prepared.output
    assert read_dataset_manifest(tmp_path / "d")["splits"] == {"train": 8, "test": 4}


@pytest.mark.parametrize(
    "args",
    [
        ["pretrain", "--method", "simclr2"],
        ["compress", "--method", "prune", "--model", "m"],
        ["evaluate", "--set", "evaluate.knn_k=-1", "--model", "m"],
    ],
)
def test_a_bad_value_is_refused_before_torch_is_imported(tmp_path: Path, args: list[str]) -> None:
    """In a fresh interpreter (this one has torch loaded): the choices come from params'
    Literal fields and the params are validated before a stage module is imported."""
    import subprocess
    import sys

    script = (
        "import sys\nfrom selfsup.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as exit:\n"
        "    print('torch' in sys.modules, exit.code)\n"
    )
    command = [*args, "--data", str(tmp_path), "--out", str(tmp_path / "out")]
    params = ["--params", str(tmp_path / "params.yaml")]
    runner.invoke(app, ["params", "write", "--out", str(tmp_path / "params.yaml")])
    done = subprocess.run(
        [sys.executable, "-c", script, *command, *params], capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", "2"], done.stdout + done.stderr
    assert "simclr2" in done.stderr or "prune" in done.stderr or "knn_k" in done.stderr
