"""The device a stage runs on, the fast GPU path of a training step, and its fall-back on a CPU.

``PretrainParams`` *asks* for bf16 autocast, channels-last memory, ``torch.compile`` and views
made on the device; :func:`resolve` decides what this device gets. On a CPU, bf16 autocast (no
bf16 matrix units on most CPUs: slower, and less exact) and ``torch.compile`` (minutes of C++
compilation for short CPU runs) are turned off with a log line, so the ``gpu`` profile still runs
— in fp32, eager — on a laptop. Channels-last and views on the device are plain tensor layouts and
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


def resolve(params: PretrainParams, device: torch.device) -> Accel:
    """The requested options that this device supports (the rest logged and dropped)."""
    cuda = device.type == "cuda"
    if params.precision == "bf16" and not cuda:
        log.info("precision=bf16 autocast is used on CUDA only; training in fp32 on %s", device)
    if params.compile and not cuda:
        log.info("compile is used on CUDA only; running eagerly on %s", device)
    return Accel(
        bf16=params.precision == "bf16" and cuda,
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
