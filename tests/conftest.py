"""Shared fixtures: small datasets in the project's own format, small JPEG-folder archives and
the real CIFAR-10 archive's path."""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.config import CIFAR10_ARCHIVE_ENV
from selfsup.data.shards import Split, write_dataset

# Real-service fixtures (Ceph RGW, Pushgateway): tests/fixtures/plugin.py
pytest_plugins = ["fixtures.plugin"]


def random_dataset(root: Path, n_train: int = 48, n_test: int = 24, classes: int = 3) -> Path:
    """A dataset directory of random 32×32 uint8 images with labels, written by write_dataset."""
    gen = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
        return Split(images=images, labels=torch.arange(n) % classes)

    write_dataset(
        root,
        {"train": split(n_train), "test": split(n_test)},
        source="test-random",
        class_names=[f"c{i}" for i in range(classes)],
        params={},
    )
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return random_dataset(tmp_path / "data")


# Distinct solid colours per class, so a test can tell from an image which class it came from.
CLASS_COLOURS = [(230, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 40), (200, 40, 210)]


@pytest.fixture
def cifar10_archive() -> Path:
    """Path of the real CIFAR-10 JPEG archive from $SELFSUP_CIFAR10_ARCHIVE.

    Unset, the test fails with what to set: the README's test command names the archive, and a
    test that needs real data and does not get it must not pass as skipped."""
    value = os.environ.get(CIFAR10_ARCHIVE_ENV)
    if not value:
        pytest.fail(
            f"{CIFAR10_ARCHIVE_ENV} is not set: export {CIFAR10_ARCHIVE_ENV}=/path/to/"
            "cifar10-jpg.tar.gz (the README's test command) to run the tests on the real archive"
        )
    path = Path(value).expanduser()
    if not path.is_file():
        pytest.fail(f"{CIFAR10_ARCHIVE_ENV}={value} is not a file")
    return path


def encode_image(colour: tuple[int, int, int], size: tuple[int, int], seed: int, fmt: str) -> bytes:
    """An image of ``colour`` with mild per-image noise (so every image is distinct)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-12, 13, (size[1], size[0], 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


ArchiveBuilder = Callable[..., Path]


@pytest.fixture
def make_archive(tmp_path: Path) -> ArchiveBuilder:
    """Build ``tmp_path/<name>``: ``<prefix>/{train,test}/class<i>/NNNN.jpg`` JPEGs + extras.

    ``extra`` maps member names to bytes (e.g. a corrupt JPEG) added after the images.
    """

    def build(
        name: str = "mini.tar.gz",
        classes: int = 3,
        train: int = 4,
        test: int = 2,
        prefix: str = "mini-cifar/",
        size: tuple[int, int] = (32, 32),
        extra: dict[str, bytes] | None = None,
    ) -> Path:
        path = tmp_path / name
        members: dict[str, bytes] = {}
        for split, count in (("train", train), ("test", test)):
            for c in range(classes):
                for i in range(count):
                    seed = 100_000 * (split == "test") + 1_000 * c + i
                    data = encode_image(CLASS_COLOURS[c], size, seed, "JPEG")
                    members[f"{prefix}{split}/class{c}/{i:04d}.jpg"] = data
        members.update(extra or {})
        with tarfile.open(path, "w:gz") as tar:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    return build


def photo_folder(root: Path, classes: int = 3, train: int = 6, test: int = 3) -> dict[str, Any]:
    """An image folder ``root/{train,test}/class<c>/photo-<c><i>.png`` of distinct 32×32 PNGs.

    Returns each file's path inside ``root`` → its exact pixels (uint8 ``[3,32,32]``; PNG is
    lossless and 32×32 is not resized): the oracle a test finds a dataset row's file by.
    """
    pixels: dict[str, Any] = {}
    for split, count in (("train", train), ("test", test)):
        for c in range(classes):
            for i in range(count):
                name = f"{split}/class{c}/photo-{c}{i:02d}.png"
                data = encode_image(CLASS_COLOURS[c], (32, 32), zlib.crc32(name.encode()), "PNG")
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
                with Image.open(io.BytesIO(data)) as image:
                    array = np.asarray(image.convert("RGB")).copy()
                pixels[name] = torch.from_numpy(array).permute(2, 0, 1)
    return pixels


def kill_after_first_epoch(run: Callable[[], object]) -> None:
    """Call ``run`` (a pretrain run) with the process "killed" right after epoch 1's checkpoint is
    on disk (a KeyboardInterrupt out of the stage, as from Ctrl-C), so a test can resume it."""
    from selfsup.train import stage

    real_save = stage.save_checkpoint

    def save_then_die(directory: Path, state: dict[str, object]) -> Path:
        path = real_save(directory, state)
        if state["epoch"] == 0:
            raise KeyboardInterrupt("simulated kill after epoch 1")
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage, "save_checkpoint", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            run()
