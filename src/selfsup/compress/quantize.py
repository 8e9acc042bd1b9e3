"""int8 static post-training quantization of convolutions (and linears) on the CPU.

What works with torch 2.14.1 on a CPU, checked here: ``torch.ao.quantization``'s FX graph mode
(``prepare_fx``/``convert_fx`` with the ``x86`` qconfig mapping: per-channel symmetric int8
weights, affine uint8 activations, conv+BN+ReLU fused) runs real int8 kernels (FBGEMM/oneDNN)
in eager PyTorch and traces to TorchScript. It emits a ``DeprecationWarning`` (the API is slated
to move to torchao); the PT2E flow has already left torch (``torch.ao.quantization.quantize_pt2e``
is gone in 2.14) and torchao's PT2E output only becomes int8 kernels after ``torch.compile``
(Inductor, a C++ toolchain at load time) — not a deployable file. So FX it is, until torchao
offers a CPU int8 path that serializes; docs/compress.md records this. Calibration runs the
observed model on unlabeled images only.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    return "x86" if "x86" in engines else "fbgemm" if "fbgemm" in engines else engines[-1]


@torch.no_grad()
def quantize_int8(
    encoder: nn.Module, calibration: torch.Tensor, batch_size: int = 256
) -> nn.Module:
    """A statically int8-quantized copy of ``encoder`` (eval mode), calibrated on ``calibration``
    (uint8 images [N,3,H,W]); zeros in the weights stay exactly zero (symmetric weights)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = _engine()
    torch.backends.quantized.engine = engine
    model = copy.deepcopy(encoder).eval()
    example = (calibration[:2].float().div(255.0),)
    with warnings.catch_warnings():
        # The API's own deprecation notices and observer chatter, once per call: recorded in
        # docs/compress.md instead of repeated on every run.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example)
        for start in range(0, len(calibration), batch_size):
            prepared(calibration[start : start + batch_size].float().div(255.0))
        quantized: nn.Module = convert_fx(prepared)
    return quantized.eval()
