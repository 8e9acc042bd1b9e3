"""Patch features for clustering: a selfsup encoder when given, HOG otherwise.

The stated baseline is a HOG descriptor of the grey patch (``cv2.HOGDescriptor``: 8×8 cells, 9
orientation bins, 16×16 blocks): it encodes shape and is blind to the per-instance colour, which
is what "similar category and viewpoint" needs when no trained encoder exists yet.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed


def hog_features(patches: np.ndarray) -> np.ndarray:
    """HOG of each RGB uint8 patch ``[N,P,P,3]`` (resized to 32×32), float32 ``[N,324]``."""
    hog = cv2.HOGDescriptor((32, 32), (16, 16), (8, 8), (8, 8), 9)
    rows = []
    for patch in patches:
        gray = cv2.cvtColor(
            cv2.resize(patch, (32, 32), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY
        )
        rows.append(np.asarray(hog.compute(gray), np.float32).ravel())
    return np.stack(rows) if rows else np.zeros((0, 324), np.float32)


def encoder_features(patches: np.ndarray, model_dir: Path) -> np.ndarray:
    """Features of a trained selfsup encoder (model directory) for RGB uint8 ``[N,P,P,3]``."""
    encoder, _ = load_encoder(model_dir)
    images = torch.from_numpy(np.ascontiguousarray(patches)).permute(0, 3, 1, 2).contiguous()
    return embed(encoder, images).numpy().astype(np.float32)
