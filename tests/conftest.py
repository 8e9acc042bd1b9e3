"""Shared fixtures: small datasets written in the project's own format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from selfsup.data.shards import Split, write_dataset


def random_dataset(root: Path, n_train: int = 48, n_test: int = 24, classes: int = 3) -> Path:
    """A dataset directory of random 32×32 uint8 images with labels, written by write_dataset."""
    gen = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
        return Split(images=images, labels=torch.arange(n) % classes)

    write_dataset(root, {"train": split(n_train), "test": split(n_test)}, source="test-random",
                  class_names=[f"c{i}" for i in range(classes)], params={})
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return random_dataset(tmp_path / "data")
