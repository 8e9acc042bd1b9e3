"""Start-up: a stage imports what its default path needs, and torchvision (about 2 s, its
models and ops) only where it is used (the ResNet, the torchvision augmentation backend)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["selfsup.train.stage", "selfsup.evaluate.stage", "selfsup.unlearn.stage",
     "selfsup.distill.stage", "selfsup.compress.stage", "selfsup.mining.stage",
     "selfsup.data.stage", "selfsup.cli"],
)  # fmt: skip
def test_a_stage_module_does_not_import_torchvision(module: str) -> None:
    script = f"import sys, {module}; print('torchvision' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_the_resnet_still_builds_with_torchvision_imported_on_demand() -> None:
    from selfsup.config import PretrainParams
    from selfsup.models import build_encoder

    assert build_encoder(PretrainParams(encoder="resnet18_cifar")).out_dim == 512
