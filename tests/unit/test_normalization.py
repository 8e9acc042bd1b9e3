"""Input statistics from the training data: measured once into the dataset manifest, used by the
encoder, recorded with the model and restored with it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup.config import PretrainParams
from selfsup.data.shards import Split, image_statistics, write_dataset
from selfsup.models.artifact import data_normalization, load_encoder, save_encoder
from selfsup.models.encoders import CIFAR_MEAN, Normalization, build_encoder


def _split(images: np.ndarray) -> Split:
    return Split(torch.from_numpy(images), torch.zeros(len(images), dtype=torch.int64))


def test_statistics_are_the_train_splits_channel_mean_and_std() -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (37, 3, 8, 8), dtype=np.uint8)
    test = np.full((5, 3, 8, 8), 255, dtype=np.uint8)  # must not count
    stats = image_statistics({"test": _split(test), "train": _split(train)}, chunk=10)
    pixels = train.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    assert np.allclose(stats["normalization"]["mean"], pixels.mean(axis=1), atol=1e-6)
    assert np.allclose(stats["normalization"]["std"], pixels.std(axis=1), atol=1e-6)
    assert stats["normalization"]["split"] == "train" and stats["grayscale"] is False


def test_grayscale_is_three_equal_channels_everywhere() -> None:
    gray = np.random.default_rng(1).integers(0, 256, (6, 1, 4, 4), dtype=np.uint8).repeat(3, 1)
    assert image_statistics({"train": _split(gray)})["grayscale"] is True
    gray[5, 2, 3, 3] ^= 1  # one pixel of one channel differs
    assert image_statistics({"train": _split(gray)})["grayscale"] is False


def test_the_encoder_normalises_with_the_recorded_statistics(tmp_path: Path) -> None:
    params = PretrainParams(encoder="convnet", convnet_width=4)
    stats = Normalization(mean=(0.2, 0.3, 0.4), std=(0.5, 0.25, 0.125))
    torch.manual_seed(0)
    encoder = build_encoder(params, stats).eval()
    images = torch.rand(3, 3, 16, 16)
    by_hand = (images - torch.tensor(stats.mean).view(1, 3, 1, 1)) / torch.tensor(stats.std).view(
        1, 3, 1, 1
    )
    assert torch.allclose(encoder(images), encoder.backbone(by_hand))
    save_encoder(tmp_path / "m", encoder, params)
    loaded, manifest = load_encoder(tmp_path / "m")
    assert manifest["normalization"] == stats.as_dict()
    assert loaded.normalization == stats and torch.allclose(loaded(images), encoder(images))


def test_a_dataset_without_statistics_means_cifar10s(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (4, 3, 4, 4), dtype=np.uint8)
    write_dataset(tmp_path / "d", {"train": _split(rgb)}, source="t", class_names=[], params={})
    measured, grayscale = data_normalization(tmp_path / "d")
    assert measured.mean != CIFAR_MEAN and grayscale is False
    assert Normalization.of(None) == Normalization() and Normalization().mean == CIFAR_MEAN


def test_pretraining_on_grayscale_data_warns_about_colour_jitter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from selfsup.train import stage

    gray = np.random.default_rng(3).integers(0, 256, (32, 1, 16, 16), dtype=np.uint8).repeat(3, 1)
    labels = torch.arange(32) % 2
    write_dataset(
        tmp_path / "gray",
        {"train": Split(torch.from_numpy(gray), labels)},
        source="t",
        class_names=["a", "b"],
        params={},
    )
    params = PretrainParams(
        encoder="convnet", convnet_width=4, projector_hidden=8, projector_out=4, epochs=1,
        warmup_epochs=0, batch_size=16, max_images=None, num_workers=0,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        stage.run(tmp_path / "gray", params=params, out=tmp_path / "model")
    assert "is grayscale" in caplog.text and "saturation and hue" in caplog.text
    caplog.clear()
    # with neither jitter nor random grayscale there is nothing to warn about
    quiet = params.model_copy(
        update={"augment": params.augment.model_copy(update={"jitter_strength": 0.0,
                                                             "grayscale_p": 0.0})}
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        stage.run(tmp_path / "gray", params=quiet, out=tmp_path / "model2")
    assert "is grayscale" not in caplog.text
    model_stats = load_encoder(tmp_path / "model")[1]["normalization"]
    assert model_stats == data_normalization(tmp_path / "gray")[0].as_dict()
