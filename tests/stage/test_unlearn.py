"""`selfsup unlearn` end to end on tiny data: outputs, the request record, no labels reaching LAF,
and clear errors for empty or unknown forget lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import photo_folder, random_dataset
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import PretrainParams, UnlearnParams
from selfsup.data.shards import Split, load_split
from selfsup.errors import ConfigError, SelfsupError
from selfsup.models.artifact import load_encoder
from selfsup.store import read_manifest
from selfsup.train import stage as pretrain
from selfsup.unlearn import laf, stage
from selfsup.unlearn.head import load_head, save_head

PRETRAIN = PretrainParams(
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    epochs=1,
    warmup_epochs=0,
    batch_size=8,
    max_images=None,
    num_workers=0,
    device="cpu",
)
UNLEARN = UnlearnParams(
    vae_hidden=8,
    vae_latent=4,
    vae_epochs=2,
    epochs=1,
    batch_size=8,
    plus_r_epochs=1,
    head_iterations=5,
    finetune_epochs=1,
    retrain_epochs=1,
    device="cpu",
)
runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("unlearn")
    data = random_dataset(root / "data", n_train=48, n_test=24, classes=3)
    pretrain.run(data, params=PRETRAIN, out=root / "model")
    return data, root / "model"


def _forget(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forget.txt"
    path.write_text(text)
    return path


def test_stage_serves_a_class_deletion_request(
    model: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, encoder_dir = model
    seen: list[tuple[object, object]] = []
    real = laf.laf_unlearn

    def spy(encoder: Any, remaining: object, forget: object, *args: Any) -> Any:
        seen.append((remaining, forget))
        return real(encoder, remaining, forget, *args)

    monkeypatch.setattr(stage, "laf_unlearn", spy)
    class0 = [f"train/{i}" for i in range(0, 48, 3)]  # random_dataset labels are index % 3
    forget = _forget(tmp_path, "\n".join(class0) + "\n")
    metrics = stage.run(data, encoder_dir, forget, params=UNLEARN, out=tmp_path / "out")

    # LAF got bare uint8 image tensors, nothing that carries labels
    ((remaining, forgotten),) = seen
    assert type(remaining) is torch.Tensor and type(forgotten) is torch.Tensor
    assert remaining.dtype == torch.uint8 and tuple(forgotten.shape) == (16, 3, 32, 32)
    assert metrics["forget_count"] == 16 and metrics["remaining_count"] == 32
    assert metrics["forgotten_classes"] == [0]
    assert set(metrics["methods"]) == {"laf", "laf+r", "noop", "finetune", "retrain"}
    for result in metrics["methods"].values():
        assert 0.0 <= result["acc_remaining"] <= 1.0 and result["acc_test_forget"] is not None
        assert result["seconds"] >= 0.0
    assert metrics["time_ratio_laf_retrain"] == pytest.approx(
        metrics["methods"]["laf+r"]["seconds"] / metrics["methods"]["retrain"]["seconds"]
    )
    # retrain never saw class 0 and has no reason to predict it: it gets none of them right
    assert metrics["methods"]["retrain"]["acc_forget"] == 0.0

    out = tmp_path / "out"
    unlearned, manifest = load_encoder(out / "encoder")
    original, original_manifest = load_encoder(encoder_dir)
    assert manifest["unlearned_from"] == original_manifest["content_hash"]
    assert any(
        not torch.equal(a, b)
        for a, b in zip(
            unlearned.state_dict().values(), original.state_dict().values(), strict=True
        )
    )
    head, head_manifest = load_head(out / "head")
    assert head_manifest["encoder"] == manifest["content_hash"] and head.out_features == 3
    request = json.loads((out / "request.json").read_text())
    assert request["ids"] == class0 and request["ids_count"] == 16
    assert request["dataset"] == read_manifest(data)["content_hash"]
    assert request["model_before"]["encoder"] == original_manifest["content_hash"]
    assert request["model_before"]["head"] == "fitted"
    assert request["model_after"] == {
        "encoder": manifest["content_hash"],
        "head": head_manifest["content_hash"],
    }
    assert request["audit"]["acc_forget"] == metrics["methods"]["laf+r"]["acc_forget"]
    assert json.loads((out / "metrics.json").read_text())["ids_sha256"] == request["ids_sha256"]


def test_laf_refuses_labelled_input(model: tuple[Path, Path]) -> None:
    encoder, _ = load_encoder(model[1])
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    labelled = Split(images=images, labels=torch.zeros(4, dtype=torch.long))
    for bad in (labelled, (images, labelled.labels), {"images": images}, images.float()):
        with pytest.raises(SelfsupError, match="LAF"):
            laf.laf_unlearn(encoder, bad, images, UNLEARN, torch.device("cpu"))
        with pytest.raises(SelfsupError, match="LAF"):
            laf.laf_unlearn(encoder, images, bad, UNLEARN, torch.device("cpu"))


def _cli(params: Path, model: tuple[Path, Path], forget: Path, out: Path) -> Any:
    data, encoder_dir = model
    return runner.invoke(
        app,
        [
            "unlearn",
            "--params",
            str(params),
            "--model",
            str(encoder_dir),
            "--data",
            str(data),
            "--forget",
            str(forget),
            "--out",
            str(out),
        ],
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [("# nothing to forget\n", "is empty"), ("train/1\ntrain/999\n", "unknown sample id")],
)
def test_cli_rejects_bad_forget_lists(
    model: tuple[Path, Path], tmp_path: Path, text: str, message: str
) -> None:
    params = tmp_path / "params.yaml"
    written = runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(params)])
    assert written.exit_code == 0, written.output
    result = _cli(params, model, _forget(tmp_path, text), tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_given_head_is_used_and_versioned(model: tuple[Path, Path], tmp_path: Path) -> None:
    data, encoder_dir = model
    encoder, _ = load_encoder(encoder_dir)
    forget = _forget(tmp_path, "train/0\ntrain/5\n")
    wrong = tmp_path / "wrong-head"
    save_head(wrong, torch.nn.Linear(encoder.out_dim, 7))
    params = UNLEARN.model_copy(update={"baselines": [], "plus_r": False})
    with pytest.raises(ConfigError, match="3 classes"):
        stage.run(data, encoder_dir, forget, params=params, out=tmp_path / "out", head_dir=wrong)
    given = tmp_path / "head"
    head_manifest = save_head(given, torch.nn.Linear(encoder.out_dim, 3))
    metrics = stage.run(
        data, encoder_dir, forget, params=params, out=tmp_path / "out", head_dir=given
    )
    assert set(metrics["methods"]) == {"laf"} and metrics["gaps_to_retrain"] == {}
    request = json.loads((tmp_path / "out" / "request.json").read_text())
    assert request["model_before"]["head"] == head_manifest["content_hash"]
    assert request["ids"] == ["train/0", "train/5"] and request["method"] == "laf"
    # without +R the served head is the given one, unchanged
    served, _ = load_head(tmp_path / "out" / "head")
    assert served.state_dict()["weight"].equal(load_head(given)[0].state_dict()["weight"])


def test_a_deletion_request_by_file_name_and_user_id_is_served(tmp_path: Path) -> None:
    """Done-when of issue 16: a request naming two files and a user (through the folder's ids
    CSV) is served end to end by the CLI; the record lists the names and the right rows. The
    oracle for "right" is the fixture's own files: the row whose pixels are that file's."""
    import yaml

    pixels = photo_folder(tmp_path / "photos", classes=3, train=8, test=4)
    ada = ["train/class1/photo-102.png", "train/class2/photo-205.png", "train/class0/photo-007.png"]
    owners = {name: "u-ada" for name in [*ada, "test/class1/photo-100.png"]}
    owners["train/class0/photo-001.png"] = "u-bob"
    (tmp_path / "ids.csv").write_text(
        "file,id\n" + "".join(f"{f},{u}\n" for f, u in owners.items())
    )
    params = tmp_path / "params.yaml"
    written = runner.invoke(app, ["params", "write", "--profile", "tiny", "--out", str(params)])
    assert written.exit_code == 0, written.output
    config = yaml.safe_load(params.read_text())
    config["data"].update(source="folder", folder=str(tmp_path / "photos"))
    config["data"]["ids_csv"] = str(tmp_path / "ids.csv")
    config["unlearn"] = UNLEARN.model_dump()
    params.write_text(yaml.safe_dump(config))
    prepared = runner.invoke(
        app, ["data", "prepare", "--params", str(params), "--out", str(tmp_path / "data")]
    )
    assert prepared.exit_code == 0, prepared.output
    data = tmp_path / "data"
    pretrain.run(data, params=PRETRAIN, out=tmp_path / "model")

    files = ["train/class0/photo-003.png", "train/class2/photo-206.png"]
    forget = _forget(tmp_path, f"# by file name\n{files[0]}\n{files[1]}\nu-ada  # a user\n")
    served = _cli(params, (data, tmp_path / "model"), forget, tmp_path / "out")
    assert served.exit_code == 0, served.output

    train = load_split(data, "train")

    def row_of(name: str) -> int:
        (match,) = [r for r in range(len(train)) if torch.equal(train.images[r], pixels[name])]
        return match

    want = {files[0]: [row_of(files[0])], files[1]: [row_of(files[1])]}
    want["u-ada"] = sorted(row_of(name) for name in ada)  # u-ada's test image is not a row here
    request = json.loads((tmp_path / "out" / "request.json").read_text())
    assert request["requested"] == [*files, "u-ada"] and request["requested_count"] == 3
    assert request["resolved"] == {k: [f"train/{r}" for r in v] for k, v in want.items()}
    rows = sorted(r for v in want.values() for r in v)
    assert request["ids"] == [f"train/{r}" for r in rows] and request["ids_count"] == 5
    assert request["test_rows_kept"] == {"u-ada": 1}
    assert request["dataset"] == read_manifest(data)["content_hash"]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["forget_count"] == 5 and metrics["requested_count"] == 3

    # a name the dataset does not know, or one of a test sample, serves nothing
    for bad, why in (
        ("train/class0/nope.png", "no such source id"),
        (
            "test/class1/photo-101.png",
            "a test sample",
        ),
    ):
        refused = _cli(
            params,
            (data, tmp_path / "model"),
            _forget(tmp_path, f"u-bob\n{bad}\n"),
            tmp_path / "refused",
        )
        assert refused.exit_code == 2 and f"{bad} ({why}" in refused.output, refused.output
        assert not (tmp_path / "refused").exists()
