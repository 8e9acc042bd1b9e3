"""``selfsup compress``: pretrained encoder → a smaller deployable file + manifest.

The output (replaced atomically) holds ``model.onnx`` (float methods), ``model.torchscript.pt``
(every method; int8 ships only this), ``weights.packed`` (the honest size,
:mod:`selfsup.compress.size`), ``metrics.json`` and a manifest (kind ``compressed-encoder``) with
the input contract: float [N,3,H,W] in [0,1] → [N,D], normalisation inside. No labels are read:
fine-tuning targets and fidelity are the original encoder's embeddings.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.compress.distill import DistillSet, distill_set
from selfsup.compress.export import (
    check_export,
    export_onnx,
    export_torchscript,
    run_onnx,
    run_torchscript,
)
from selfsup.compress.magnitude import magnitude_compress
from selfsup.compress.quantize import quantize_int8
from selfsup.compress.size import pack
from selfsup.compress.ssvi import ssvi_compress
from selfsup.compress.targets import weight_density
from selfsup.config import CompressParams
from selfsup.data.shards import load_split, read_dataset_manifest
from selfsup.errors import ConfigError, DataError
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.store import atomic_directory, atomic_write_bytes, atomic_write_json, write_manifest

log = logging.getLogger(__name__)

COMPRESSED_KIND = "compressed-encoder"
ONNX_NAME = "model.onnx"
TORCHSCRIPT_NAME = "model.torchscript.pt"
PACKED_NAME = "weights.packed"
METRICS_NAME = "metrics.json"
CHECK_IMAGES = 64
FIDELITY_IMAGES = 2_000


def split_method(method: str) -> tuple[str | None, bool]:
    """``"ssvi+int8"`` → ``("ssvi", True)``; ``"int8"`` → ``(None, True)``."""
    parts = method.split("+")
    prune = next((p for p in parts if p in ("magnitude", "ssvi")), None)
    return prune, "int8" in parts


def compress_encoder(
    teacher: nn.Module, data: DistillSet, params: CompressParams
) -> tuple[nn.Module, dict[str, Any]]:
    """The compressed encoder (eval mode) for ``params.method`` and what its training recorded.

    ``teacher`` is not modified. Pruning works on a copy; int8 quantizes the (pruned) copy.
    """
    prune, int8 = split_method(params.method)
    if prune is None and params.density < 1.0:
        raise ConfigError(
            f"compress.method={params.method} does not prune; set compress.density: 1.0 "
            f"(got {params.density}) or use magnitude+int8 / ssvi+int8"
        )
    student = copy.deepcopy(teacher)
    info: dict[str, Any] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        if prune == "magnitude":
            losses = magnitude_compress(student, data, params)
        elif prune == "ssvi":
            result = ssvi_compress(student, data, params)
            losses = result.losses
            info["active_counts"] = [sum(c) for c in result.active_counts]
        else:
            losses = []
    student.eval()
    info["density"] = weight_density(student)
    if losses:
        info["finetune_loss_first"], info["finetune_loss_last"] = losses[0], losses[-1]
    model = student
    if int8:
        model = quantize_int8(student, data.images[: params.calibration_images])
    return model, info


def fidelity(model: nn.Module, teacher_features: torch.Tensor, images: torch.Tensor) -> float:
    """Mean cosine similarity of the compressed and original embeddings (label-free)."""
    features = embed(model, images, 256)
    return float(F.cosine_similarity(features, teacher_features, dim=1).mean())


def _training_images(data_dir: Path, params: CompressParams) -> torch.Tensor:
    images = load_split(data_dir, "train", verify=False).images
    if params.max_images is not None and params.max_images < len(images):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(params.seed))
        images = images[order[: params.max_images]]
    if len(images) < 2:
        raise DataError(f"{data_dir}: compress needs at least 2 training images, got {len(images)}")
    return images


def _export(
    model: nn.Module, tmp: Path, images: torch.Tensor, params: CompressParams, int8: bool
) -> dict[str, Any]:
    """Write the deployable files into ``tmp`` and check each against PyTorch."""
    with torch.no_grad():
        reference = model(images)
    out: dict[str, Any] = {}
    export_torchscript(model, tmp / TORCHSCRIPT_NAME, images[:2])
    out["torchscript_max_abs_diff"] = check_export(
        reference,
        run_torchscript(tmp / TORCHSCRIPT_NAME, images),
        params.onnx_atol,
        params.onnx_rtol,
        "TorchScript",
    )
    out["torchscript_bytes"] = (tmp / TORCHSCRIPT_NAME).stat().st_size
    if not int8:
        export_onnx(model, tmp / ONNX_NAME, images[:2])
        out["onnx_max_abs_diff"] = check_export(
            reference, run_onnx(tmp / ONNX_NAME, images), params.onnx_atol, params.onnx_rtol, "ONNX"
        )
        out["onnx_bytes"] = (tmp / ONNX_NAME).stat().st_size
    return out


def run(dataset: Path, model: Path, *, params: CompressParams, out: Path) -> dict[str, Any]:
    """Compress the encoder ``model`` with ``dataset``'s unlabeled images into ``out``."""
    started = time.perf_counter()
    model_dir, data_dir = Path(model), Path(dataset)
    teacher, model_manifest = load_encoder(model_dir)
    data_manifest = read_dataset_manifest(data_dir)
    images = _training_images(data_dir, params)
    data = distill_set(teacher, images)
    student, info = compress_encoder(teacher, data, params)
    test = load_split(data_dir, "test", verify=False).images[:FIDELITY_IMAGES]
    probe = test if len(test) else images[:FIDELITY_IMAGES]
    check = probe[:CHECK_IMAGES].float().div(255.0)
    packed, dense = pack(student.state_dict()), pack(teacher.state_dict())
    metrics: dict[str, Any] = {
        "method": params.method,
        "density_target": params.density,
        "steps": params.steps,
        "train_images": len(images),
        **info,
        "packed_bytes": len(packed),
        "dense_packed_bytes": len(dense),
        "compression_ratio": len(dense) / len(packed),
        "fidelity_cosine": fidelity(student, embed(teacher, probe, 256), probe),
    }
    _, int8 = split_method(params.method)
    with atomic_directory(Path(out)) as tmp:
        metrics.update(_export(student, tmp, check, params, int8))
        atomic_write_bytes(tmp / PACKED_NAME, packed)
        metrics["wall_s"] = time.perf_counter() - started
        atomic_write_json(tmp / METRICS_NAME, metrics)
        write_manifest(
            tmp,
            COMPRESSED_KIND,
            params.model_dump(),
            model=str(model_manifest["content_hash"]),
            data=str(data_manifest["content_hash"]),
            encoder=model_manifest["params"].get("encoder"),
            out_dim=model_manifest.get("out_dim"),
            deployable=TORCHSCRIPT_NAME if int8 else ONNX_NAME,
            input={
                "name": "images",
                "dtype": "float32",
                "shape": ["N", 3, "H", "W"],
                "range": [0, 1],
            },
            output={"name": "features", "shape": ["N", model_manifest.get("out_dim")]},
        )
    log.info(
        "compress %s: density %.3f, %d → %d bytes (%.1f×), fidelity %.4f",
        params.method,
        metrics["density"],
        len(dense),
        len(packed),
        metrics["compression_ratio"],
        metrics["fidelity_cosine"],
    )
    return metrics
