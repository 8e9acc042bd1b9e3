"""Encoders: the CIFAR stem of ResNet-18, output widths, normalisation inside the model."""

import pytest
import torch
from torch import nn

from selfsup.config import PretrainParams
from selfsup.models import ProjectionHead, build_encoder
from selfsup.models.encoders import resnet18_cifar
from selfsup.train.accel import resolve_device


def test_resnet18_has_the_cifar_stem_and_keeps_resolution() -> None:
    encoder = resnet18_cifar()
    conv1 = encoder.backbone.conv1
    assert isinstance(conv1, nn.Conv2d)
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert isinstance(encoder.backbone.maxpool, nn.Identity)
    stem_out = encoder.backbone.relu(encoder.backbone.bn1(conv1(torch.rand(1, 3, 32, 32))))
    assert stem_out.shape[-2:] == (32, 32)  # the ImageNet stem would give 16×16 (then 8×8)


@pytest.mark.parametrize(("name", "width", "dim"), [("convnet", 8, 64), ("resnet18_cifar", 8, 512)])
def test_feature_width(name: str, width: int, dim: int) -> None:
    encoder = build_encoder(PretrainParams(encoder=name, convnet_width=width)).eval()  # type: ignore[arg-type]
    features = encoder(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, dim) == (2, encoder.out_dim)
    assert ProjectionHead(dim, 16, 4).eval()(features).shape == (2, 4)


def test_normalisation_lives_in_the_model() -> None:
    """forward(x) is the backbone on CIFAR-normalised pixels: no caller can forget it."""
    encoder = build_encoder(PretrainParams(convnet_width=4)).eval()
    x = torch.rand(3, 3, 16, 16)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    torch.testing.assert_close(encoder(x), encoder.backbone((x - mean) / std))


def test_cuda_request_without_cuda_is_clear() -> None:
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        from selfsup.errors import ConfigError

        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"
