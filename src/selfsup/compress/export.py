"""The deployable files: ONNX (checked with onnxruntime) and TorchScript.

ONNX uses torch's ``torch.export``-based exporter (the default since torch 2.9; it needs
``onnxscript``) with a dynamic batch dimension. The exported graph is run by onnxruntime on a
batch of real images and compared with PyTorch elementwise,
``|onnx - torch| ≤ atol + rtol·|torch|``; a mismatch fails the stage rather than shipping a
model that computes something else. An int8 model (quantized torch ops) is exported as
TorchScript only, checked the same way.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from selfsup.errors import SelfsupError

INPUT_NAME = "images"
OUTPUT_NAME = "features"


class ExportMismatch(SelfsupError):
    """The exported model's output differs from PyTorch's beyond the tolerance."""


def max_violation(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> float:
    """``max(|a - e| - rtol·|e|)``: ≤ atol means within tolerance."""
    return float(((actual - expected).abs() - rtol * expected.abs()).max().detach())


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    """Write ``model`` (float [N,3,H,W] in [0,1] → [N,D]) as a self-contained ONNX file."""
    for name in ("onnx_ir", "onnxscript"):  # per-pass INFO lines: noise in a stage's log
        logging.getLogger(name).setLevel(logging.WARNING)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            model.eval(),
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )
    if program is None:  # pragma: no cover - the dynamo exporter always returns a program
        raise SelfsupError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)


def run_onnx(path: Path, images: torch.Tensor) -> torch.Tensor:
    """Features of float ``images`` from the ONNX file, computed by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
    return torch.from_numpy(out)


def export_torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    """Trace ``model`` to TorchScript and save it (works for float and int8 models)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            model.eval(), (example,), check_trace=False
        )
        torch.jit.save(traced, str(path))


def run_torchscript(path: Path, images: torch.Tensor) -> torch.Tensor:
    """Features of float ``images`` from a saved TorchScript file."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        out: torch.Tensor = module(images)
    return out


def check_export(
    reference: torch.Tensor, exported: torch.Tensor, atol: float, rtol: float, what: str
) -> float:
    """Raise :class:`ExportMismatch` unless ``|exported - reference| ≤ atol + rtol·|reference|``
    everywhere; return the maximal absolute difference (for the metrics)."""
    if exported.shape != reference.shape:
        raise ExportMismatch(
            f"{what}: output shape {tuple(exported.shape)} != {tuple(reference.shape)}"
        )
    violation = max_violation(exported, reference, atol, rtol)
    if not violation <= atol:
        raise ExportMismatch(
            f"{what} differs from PyTorch: max(|a-e| - {rtol}·|e|) = {violation:.3g} > atol {atol}"
        )
    return float((exported - reference).abs().max())
