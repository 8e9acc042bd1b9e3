"""SimCLR views: per-sample random parameters, uint8 in and out, right sizes."""

import pytest
import torch

from selfsup.config import AugmentParams, PretrainParams, ProgressiveResize
from selfsup.data.augment import TwoViews, simclr_transform
from selfsup.data.augment_batched import BatchTwoViews
from selfsup.train.loaders import view_loader


def _gradient_images(n: int) -> torch.Tensor:
    """n identical images with structure everywhere, so any two different crops differ."""
    ramp = torch.arange(32, dtype=torch.uint8) * 8
    image = torch.stack(
        [
            ramp[None, :].expand(32, 32),
            ramp[:, None].expand(32, 32),
            (ramp[None, :] + ramp[:, None]).expand(32, 32),
        ]
    )
    return image.unsqueeze(0).repeat(n, 1, 1, 1)


def test_every_sample_gets_its_own_parameters() -> None:
    torch.manual_seed(0)
    dataset = TwoViews(_gradient_images(16), simclr_transform(32, AugmentParams()))
    views = torch.stack([dataset[i][0] for i in range(16)])
    distinct = {tuple(v.flatten().tolist()) for v in views}
    assert len(distinct) == 16, "identical inputs must get different random views"
    first, second = dataset[0]
    assert not torch.equal(first, second), "the two views of one image must differ"


def test_views_are_uint8_of_the_requested_size() -> None:
    transform = simclr_transform(24, AugmentParams(blur_p=1.0))
    view = transform(torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8))
    assert view.dtype == torch.uint8 and view.shape == (3, 24, 24)


def test_no_augmentation_probability_keeps_full_crop_colours() -> None:
    params = AugmentParams(crop_scale_min=1.0, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    image = _gradient_images(1)[0]
    torch.manual_seed(1)
    # scale=(1,1) may still pick an aspect ratio ≠ 1; the mean colour survives a resize.
    view = simclr_transform(32, params)(image)
    assert abs(view.float().mean() - image.float().mean()) < 20


def test_batched_backend_draws_parameters_per_sample() -> None:
    torch.manual_seed(0)
    images = list(_gradient_images(16))
    first, second = BatchTwoViews(32, AugmentParams())(images)
    assert first.shape == second.shape == (16, 3, 32, 32) and first.dtype == torch.float32
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    distinct = {tuple(v.flatten().tolist()) for v in first}
    assert len(distinct) == 16, "one crop/jitter for the whole batch would make these equal"
    assert not torch.equal(first, second)


def test_batched_backend_without_randomness_is_the_identity() -> None:
    """All probabilities 0 and crop scale 1 leave the (square) images unchanged."""
    params = AugmentParams(crop_scale_min=1.0, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    collate = BatchTwoViews(32, params)
    images = list(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    first, _ = collate(images)
    torch.testing.assert_close(first, torch.stack(images).float() / 255, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["torchvision", "kornia"])
def test_loader_views_take_the_epochs_progressive_size(backend: str) -> None:
    ramp = ProgressiveResize(min_size=16, hold=0.2, ramp=0.6, multiple=4)
    augment = AugmentParams(backend=backend)  # type: ignore[arg-type]
    params = PretrainParams(epochs=3, batch_size=4, progressive_resize=ramp, augment=augment)
    sizes = []
    for epoch in range(3):
        first, second = next(
            iter(view_loader(_gradient_images(8), params, epoch, torch.device("cpu")))
        )
        assert first.shape == second.shape
        sizes.append(tuple(first.shape[-3:]))
    # epoch 1 of 3: 16 + (1/3 - 0.2) / 0.6 * 16 = 19.6 → 16; the last epoch is full size
    assert sizes == [(3, 16, 16), (3, 16, 16), (3, 32, 32)]
