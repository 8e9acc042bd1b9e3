"""The model directory: ``encoder.pt`` (a state dict) + ``manifest.json`` (architecture params,
lineage, metrics); a trained one also holds ``metrics.json`` and ``loss.csv``. Loading rebuilds
the architecture from the manifest and reads the weights with ``torch.load(weights_only=True)``
(no code is unpickled), after verifying checksums.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from selfsup.config import PretrainParams
from selfsup.models.encoders import Encoder, Normalization, build_encoder
from selfsup.store import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    read_manifest,
    write_manifest,
)
from selfsup.store.tensors import load_tensors

MODEL_KIND = "encoder"
WEIGHTS_NAME = "encoder.pt"


def save_encoder(
    root: Path, encoder: Encoder, params: PretrainParams, **fields: Any
) -> dict[str, Any]:
    """Write the encoder's weights and the manifest (last) into ``root``."""
    buffer = io.BytesIO()
    torch.save(encoder.state_dict(), buffer)
    atomic_write_bytes(Path(root) / WEIGHTS_NAME, buffer.getvalue())
    return write_manifest(
        Path(root),
        MODEL_KIND,
        params.model_dump(),
        out_dim=encoder.out_dim,
        normalization=encoder.normalization.as_dict(),
        **fields,
    )


def write_model(
    out: Path, encoder: Encoder, params: PretrainParams, metrics: dict[str, Any], **lineage: Any
) -> None:
    """Write the model directory ``out`` atomically: ``metrics.json``, ``loss.csv`` (per-epoch
    loss and throughput, for ``dvc plots``), the encoder and its manifest (with ``lineage``)."""
    rows = ["epoch,loss,images_per_second"] + [
        f"{i + 1},{loss:.6f},{ips:.1f}"
        for i, (loss, ips) in enumerate(
            zip(metrics["loss_per_epoch"], metrics["images_per_second"], strict=True)
        )
    ]
    summary = ("final_loss", "wall_seconds", "epochs", "train_images")
    with atomic_directory(out, MODEL_KIND) as tmp:
        atomic_write_json(tmp / "metrics.json", metrics)
        (tmp / "loss.csv").write_text("\n".join(rows) + "\n")
        save_encoder(tmp, encoder, params, metrics={k: metrics[k] for k in summary}, **lineage)


def load_encoder(root: Path) -> tuple[Encoder, dict[str, Any]]:
    """Rebuild and load the encoder in ``root``; returns it (eval mode) and its manifest."""
    manifest = read_manifest(Path(root), kind=MODEL_KIND)
    params = PretrainParams.model_validate(manifest["params"])
    encoder = build_encoder(params, Normalization.of(manifest.get("normalization")))
    state = load_tensors(Path(root) / WEIGHTS_NAME)
    encoder.load_state_dict(state)
    encoder.eval()
    return encoder, manifest


def data_normalization(dataset: Path) -> tuple[Normalization, bool]:
    """The input statistics a model trained on ``dataset`` (a dataset or a distilled set) uses,
    and whether its images are grayscale: from its manifest (CIFAR-10's, and not grayscale, when
    it records none)."""
    manifest = read_manifest(Path(dataset), verify=False)
    return Normalization.of(manifest.get("normalization")), bool(manifest.get("grayscale"))
