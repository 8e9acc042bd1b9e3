"""Backbones that map uint8-range images to a feature vector.

Both encoders take float images scaled to [0, 1] ([N,3,H,W]) and normalise internally with the
channel statistics of the training data (the dataset manifest's ``normalization``; CIFAR-10's
for a model or dataset that records none), so every caller (training, evaluation, export) feeds
the same thing and no stage can forget the normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from selfsup.config import PretrainParams

# CIFAR-10's train-split statistics: what models and datasets from before the manifests recorded
# theirs were trained with.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of images in [0, 1], and the split they were measured on."""

    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD
    split: str = "train"

    def as_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "split": self.split}

    @classmethod
    def of(cls, recorded: Mapping[str, Any] | None) -> Normalization:
        """A manifest's ``normalization`` entry; CIFAR-10's when it has none."""
        if not recorded:
            return cls()
        mean, std = (tuple(float(v) for v in recorded[k]) for k in ("mean", "std"))
        return cls(mean, std, str(recorded.get("split", "train")))  # type: ignore[arg-type]


class Encoder(nn.Module):
    """A backbone with input normalisation and a known output width ``out_dim``."""

    def __init__(self, backbone: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.out_dim = out_dim
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        self.normalize_with(Normalization())

    def normalize_with(self, normalization: Normalization) -> Encoder:
        """Use these input statistics (the training data's); returns the encoder."""
        self.normalization = normalization
        self.mean.copy_(torch.tensor(normalization.mean).view(1, 3, 1, 1))
        self.std.copy_(torch.tensor(normalization.std).view(1, 3, 1, 1))
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: float [N,3,H,W] in [0,1] → features [N, out_dim]."""
        out: torch.Tensor = self.backbone((images - self.mean) / self.std)
        return out


def resnet18_cifar() -> Encoder:
    """torchvision's ResNet-18 with the CIFAR stem: 3×3 conv, stride 1, no max-pool, no fc.

    The ImageNet stem (7×7 stride 2 + max-pool) shrinks a 32×32 image to 8×8 before the first
    block and costs several kNN points on CIFAR; every SimCLR CIFAR recipe replaces it.
    """
    import torchvision  # here: importing torchvision.models costs ~2 s that the ConvNet never needs

    net = torchvision.models.resnet18(weights=None)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return Encoder(net, out_dim=512)


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


def convnet(width: int = 32) -> Encoder:
    """A small VGG-style ConvNet (4 stages, ×2 channels each, global average pool).

    ~0.3 M parameters at width 32: fast enough to pretrain on CIFAR-10 on a 2-core CPU in minutes.
    """
    layers: list[nn.Module] = []
    c_in = 3
    for stage in range(4):
        c_out = width * 2**stage
        layers += _conv_block(c_in, c_out)
        if stage < 3:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Encoder(nn.Sequential(*layers), out_dim=c_in)


def build_encoder(params: PretrainParams, normalization: Normalization | None = None) -> Encoder:
    """The encoder named in ``params`` with fresh (seeded by the caller) random weights, for data
    with ``normalization`` (default: CIFAR-10's)."""
    resnet = params.encoder == "resnet18_cifar"
    encoder = resnet18_cifar() if resnet else convnet(params.convnet_width)
    return encoder.normalize_with(normalization or Normalization())
