"""The model card against the files it is made from: every number it shows is the one in evaluate's
or compress's metrics.json (formatted as `selfsup summary` prints it), the hashes are the
manifests', and the registry keeps the card of each record beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import GateParams, profile_params
from selfsup.errors import SelfsupError
from selfsup.models.artifact import save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.registry.register import open_registry, register_and_gate
from selfsup.serve.card import card_from_dirs, model_card

runner = CliRunner()
# Odd digits on purpose: only the file's values, formatted, can produce these strings.
METRICS: dict[str, Any] = {
    "labeled": True,
    "trained": {"knn_top1": 0.41237, "linear_top1": 0.45671, "linear_ece": 0.03149,
                "rankme": 51.23456},
    "random_init": {"knn_top1": 0.30891, "linear_top1": 0.33338, "linear_ece": 0.02011,
                    "rankme": 38.98765},
    "raw_pixels": {"knn_top1": 0.35562, "linear_top1": 0.47777, "linear_ece": 0.06123,
                   "rankme": 60.11111},
    "num_train": 640,
    "num_test": 320,
    "num_classes": 10,
    "rankme_samples": 640,
}  # fmt: skip
COMPRESS = {
    "method": "ssvi",
    "density": 0.20004,
    "density_target": 0.2,
    "packed_bytes": 123456,
    "dense_packed_bytes": 654321,
    "compression_ratio": 5.30003,
    "fidelity_cosine": 0.98761,
    "onnx_bytes": 777,
    "onnx_max_abs_diff": 1.234e-06,
}


def _row(card: str, label: str) -> list[str]:
    (line,) = [ln for ln in card.splitlines() if ln.startswith(f"| {label} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def _write(directory: Path, **files: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        (directory / f"{name}.json").write_text(json.dumps(obj))
    return directory


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Path]:
    evaluation = _write(
        tmp_path / "evaluation",
        metrics=METRICS,
        manifest={"model": "ab" * 32, "data": "cd" * 32, "params": {"ece_bins": 15}},
    )
    model = _write(
        tmp_path / "model",
        manifest={
            "params": {"method": "simclr", "encoder": "convnet", "epochs": 7, "batch_size": 64},
            "metrics": {"final_loss": 4.56789, "epochs": 7, "train_images": 640},
        },
    )
    compressed = _write(
        tmp_path / "compressed", metrics=COMPRESS, manifest={"deployable": "model.onnx"}
    )
    request = {"served": "2026-01-02T03:04:05+00:00", "ids_count": 3, "ids_sha256": "ef" * 32,
               "method": "laf", "model_before": {"encoder": "12" * 32}}  # fmt: skip
    unlearned = _write(tmp_path / "unlearned", request=request)
    return {
        "evaluation": evaluation,
        "model": model,
        "compressed": compressed,
        "unlearned": unlearned,
    }


def test_the_card_shows_the_files_numbers(outputs: dict[str, Path]) -> None:
    card = card_from_dirs(
        outputs["evaluation"], outputs["model"], outputs["compressed"], [outputs["unlearned"]]
    )
    for label, key in (("kNN top-1", "knn_top1"), ("linear top-1", "linear_top1"),
                       ("linear ECE", "linear_ece"), ("RankMe", "rankme")):  # fmt: skip
        cells = _row(card, label)
        floors = [f"{METRICS[f][key]:.4f}" for f in ("trained", "random_init", "raw_pixels")]
        assert cells[1:4] == floors, label
    # The gain over the stronger floor, and which floor it is.
    assert _row(card, "kNN top-1")[4] == f"{0.41237 - 0.35562:+.4f} (raw pixels)"
    assert _row(card, "linear top-1")[4] == f"{0.45671 - 0.47777:+.4f} (raw pixels)"
    assert _row(card, "linear ECE")[4] == f"{0.03149 - 0.02011:+.4f} (random init)"
    # Data, its hash, the method, calibration, compression, deletions, limitations.
    assert f"dataset content hash: `{'cd' * 32}`" in card
    assert f"model content hash: `{'ab' * 32}`" in card
    assert "640 train and 320 test images, labeled, 10 classes" in card
    assert "method simclr, encoder convnet, epochs 7, batch_size 64" in card
    assert "final loss 4.5679 after 7 epochs on 640 images" in card
    assert "(15 equal-width bins): 0.0315 (floors: random init 0.0201, raw pixels 0.0612)" in card
    assert "method ssvi, weight density 0.2000 (target 0.2)" in card
    assert "123456 bytes vs 654321 dense: 5.3000× smaller" in card
    assert "0.9876" in card and "`model.onnx`" in card and "1.23e-06" in card
    assert re.search(r"2026-01-02T03:04:05\+00:00: 3 samples \(ids sha256 `efefefefefef`\) "
                     r"forgotten with laf from model `1212121212121212`", card)  # fmt: skip
    limits = card.split("## Limitations")[1]
    assert "linear top-1 does not beat the raw pixels floor" in limits
    assert "linear ECE does not beat the random init floor" in limits
    assert "kNN top-1 does not" not in limits and "RankMe on 640 embeddings" in limits
    assert card.index("## Data") < card.index("## Method") < card.index("## Metrics")
    assert card.index("## Calibration") < card.index("## Compression") < card.index("## Deletion")


def test_what_an_input_lacks_is_said_not_guessed(outputs: dict[str, Path]) -> None:
    unlabeled = {"labeled": False, "trained": {"rankme": 3.5}, "random_init": {"rankme": 2.25}}
    card = model_card(unlabeled, title="x")
    assert _row(card, "RankMe")[1:4] == ["3.5000", "2.2500", "-"]
    assert "kNN top-1" not in card
    assert "not measured: not compressed in this run" in card
    assert "not measured (no labels: no linear probe)" in card
    assert "dataset content hash: not measured" in card
    assert "none: this encoder was trained on the dataset above as it is" in card
    assert "only RankMe (label-free)" in card
    assert "| - | not measured |" in model_card({"trained": {"rankme": 1.0}}, title="y")
    with pytest.raises(SelfsupError, match=r"evaluate's metrics\.json"):
        card_from_dirs(outputs["model"])


def test_the_cli_writes_the_card(outputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "card.md"
    args = ["model-card", "--evaluation", str(outputs["evaluation"]), "--out", str(out)]
    result = runner.invoke(app, [*args, "--compressed", str(outputs["compressed"])])
    assert result.exit_code == 0, result.output
    assert out.read_text() == card_from_dirs(outputs["evaluation"], None, outputs["compressed"])


def test_registering_keeps_the_card_beside_the_record(tmp_path: Path) -> None:
    params = profile_params("tiny").pretrain
    torch.manual_seed(0)
    save_encoder(tmp_path / "encoder", build_encoder(params), params, data="cd" * 32)
    (tmp_path / "evaluate.json").write_text(json.dumps(METRICS))
    registry = open_registry(str(tmp_path / "registry"))
    decision = register_and_gate(
        registry, tmp_path / "encoder", tmp_path / "evaluate.json", GateParams(), {}
    )
    model = decision["model"]
    assert (tmp_path / f"registry/registry/models/{model}.card.md").is_file()
    card = registry.card(model)
    assert card == registry.card("champion") and card.startswith(f"# Model card: {model}")
    record = registry.record(model)
    assert f"`{record['lineage']['model_content_hash']}`" in card
    assert f"dataset content hash: `{'cd' * 32}`" in card
    assert _row(card, "kNN top-1")[1] == f"{METRICS['trained']['knn_top1']:.4f}"
    assert "method simclr" in card
    assert registry.ids() == [model]  # the card is no second record
