"""The model directory: ``encoder.pt`` (a state dict) + ``manifest.json`` (architecture params,
lineage, metrics). Loading rebuilds the architecture from the manifest and reads the weights with
``torch.load(weights_only=True)`` (no code is unpickled), after verifying checksums.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from selfsup.config import PretrainParams
from selfsup.models.encoders import Encoder, build_encoder
from selfsup.store import atomic_write_bytes, read_manifest, write_manifest

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
        Path(root), MODEL_KIND, params.model_dump(), out_dim=encoder.out_dim, **fields
    )


def load_encoder(root: Path) -> tuple[Encoder, dict[str, Any]]:
    """Rebuild and load the encoder in ``root``; returns it (eval mode) and its manifest."""
    manifest = read_manifest(Path(root), kind=MODEL_KIND)
    params = PretrainParams.model_validate(manifest["params"])
    encoder = build_encoder(params)
    state = torch.load(Path(root) / WEIGHTS_NAME, weights_only=True, map_location="cpu")
    encoder.load_state_dict(state)
    encoder.eval()
    return encoder, manifest
