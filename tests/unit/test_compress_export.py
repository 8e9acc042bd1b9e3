"""Export and int8: ONNX (onnxruntime) and TorchScript match PyTorch within the stated tolerance;
int8 stays close to float and keeps pruned weights at exactly zero."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from selfsup.compress.export import (
    ExportMismatch,
    check_export,
    export_onnx,
    export_torchscript,
    run_onnx,
    run_torchscript,
)
from selfsup.compress.magnitude import make_permanent, prune_global
from selfsup.compress.quantize import quantize_int8
from selfsup.compress.size import pack, unpack
from selfsup.models.encoders import convnet

ATOL, RTOL = 1e-4, 1e-3


def _encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    encoder = convnet(8)
    prune_global(encoder, 0.3)
    make_permanent(encoder)
    return encoder.eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_onnx_matches_pytorch_with_a_dynamic_batch(tmp_path: Path) -> None:
    encoder = _encoder()
    images = _images(5).float() / 255
    export_onnx(encoder, tmp_path / "m.onnx", images[:2])
    with torch.no_grad():
        expected = encoder(images)
    got = run_onnx(tmp_path / "m.onnx", images)
    assert check_export(expected, got, ATOL, RTOL, "ONNX") <= ATOL + RTOL * float(
        expected.abs().max()
    )
    with pytest.raises(ExportMismatch):
        check_export(expected, got + 1e-2, ATOL, RTOL, "ONNX")


def test_int8_is_close_to_float_and_torchscript_reproduces_it(tmp_path: Path) -> None:
    encoder = _encoder()
    quantized = quantize_int8(encoder, _images(64, 1))
    images = _images(16, 2).float() / 255
    with torch.no_grad():
        reference, int8 = encoder(images), quantized(images)
    assert float(F.cosine_similarity(reference, int8).mean()) > 0.98
    export_torchscript(quantized, tmp_path / "q.pt", images[:2])
    check_export(int8, run_torchscript(tmp_path / "q.pt", images), ATOL, RTOL, "TorchScript")


def test_int8_keeps_pruned_weights_zero() -> None:
    encoder = _encoder()
    zeros = (encoder.backbone[4].weight == 0).sum()  # second conv (first is dense)
    quantized = quantize_int8(encoder, _images(32, 1))
    packed = unpack(pack(quantized.state_dict()))
    int_weights = [t for n, t in packed.items() if n.endswith("weight") and t.dtype == torch.int8]
    assert len(int_weights) == 4
    assert int((int_weights[1] == 0).sum()) >= int(zeros)
