"""The device a stage runs on, the fast GPU path of a training step, and its fall-back on a CPU.

``PretrainParams`` *asks* for bf16 autocast, channels-last memory, ``torch.compile`` and views
made on the device; :func:`resolve` decides what this device gets. bf16 autocast runs on CUDA and
on a CPU whose oneDNN has native bf16 (AVX-512 BF16 or AMX: 1.43x fp32 training on this project's
2-core machines, 2.22x with channels-last and views made in the training process, at the same
kNN over 3 seeds; BENCHMARKS.md); on other CPUs bf16 is emulated — slower than fp32 — so it is
dropped there with a log line. ``torch.compile`` is used on CUDA only: on a CPU it was slower than
eager bf16 + channels-last for this model (0.90x, BENCHMARKS.md) and costs its compilation time
on every run. Channels-last and views on the device are plain tensor layouts and
ops and behave the same on both (the CPU tests exercise them).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from selfsup.config import PretrainParams
from selfsup.errors import ConfigError

log = logging.getLogger("selfsup.accel")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is visible; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Accel:
    """What one training step uses on this device."""

    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    device_views: bool = False


EAGER = Accel()


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix products run natively on ``device`` (CUDA, or oneDNN on a CPU with
    AVX-512 BF16 / AMX), rather than emulated."""
    if device.type == "cuda":
        return True
    return bool(
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
        and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def resolve(params: PretrainParams, device: torch.device) -> Accel:
    """The requested options that this device supports (the rest logged and dropped)."""
    cuda = device.type == "cuda"
    bf16 = params.precision == "bf16" and native_bf16(device)
    if params.precision == "bf16" and not bf16:
        log.info(
            "precision=bf16: %s has no native bf16 (AVX-512 BF16 or AMX); training in fp32", device
        )
    if params.compile and not cuda:
        log.info("compile is used on CUDA only; running eagerly on %s", device)
    return Accel(
        bf16=bf16,
        channels_last=params.channels_last,
        compile=params.compile and cuda,
        device_views=params.augment.placement == "device",
    )


def autocast(accel: Accel, device: torch.device) -> AbstractContextManager[Any]:
    """bf16 autocast for the forward pass when enabled; a no-op context otherwise.

    Callers compute the loss *outside* it on ``.float()`` projections: similarity logits and
    their log-sum-exp stay fp32.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=accel.bf16)


def prepare_model(model: nn.Module, accel: Accel) -> nn.Module:
    """Channels-last weights (in place: the caller's references stay valid)."""
    if accel.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def compiled(model: nn.Module, accel: Accel) -> nn.Module:
    """``torch.compile(model)`` when enabled. Its parameters are ``model``'s, so checkpoints keep
    being taken from the uncompiled modules (no ``_orig_mod.`` prefixes)."""
    if not accel.compile:
        return model
    out: nn.Module = torch.compile(model)  # type: ignore[assignment]
    return out


def layout(images: torch.Tensor, accel: Accel) -> torch.Tensor:
    """A float image batch in the memory format the model was prepared for."""
    if accel.channels_last:
        return images.contiguous(memory_format=torch.channels_last)
    return images
