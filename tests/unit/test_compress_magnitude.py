"""Global magnitude pruning: exact density, a single global threshold, the first conv dense,
and fine-tuning never revives a pruned weight."""

from __future__ import annotations

import torch

from selfsup.compress.distill import DistillSet
from selfsup.compress.magnitude import magnitude_compress, prune_global
from selfsup.compress.targets import prunable_modules, prunable_weight_names, weight_density
from selfsup.config import CompressParams
from selfsup.models.encoders import convnet


def test_prunes_to_the_density_with_one_global_threshold_and_keeps_the_first_conv() -> None:
    torch.manual_seed(0)
    encoder = convnet(8)
    first = encoder.backbone[0].weight.detach().clone()
    before = {n: encoder.get_parameter(n).detach().clone() for n in prunable_weight_names(encoder)}
    prune_global(encoder, 0.2)
    total = sum(w.numel() for w in before.values())
    kept, dropped = [], []
    for (_, module), original in zip(prunable_modules(encoder), before.values(), strict=True):
        mask = module.weight != 0
        kept.append(original[mask].abs())
        dropped.append(original[~mask].abs())
    assert sum(len(k) for k in kept) == round(0.2 * total)
    assert float(torch.cat(kept).min()) >= float(torch.cat(dropped).max())
    assert torch.equal(encoder.backbone[0].weight, first)
    assert "backbone.0.weight" not in before


def test_finetuning_keeps_pruned_weights_at_zero_and_removes_the_masks() -> None:
    torch.manual_seed(0)
    encoder = convnet(8)
    gen = torch.Generator().manual_seed(1)
    data = DistillSet(
        images=torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=gen),
        targets=torch.rand(16, 64, generator=gen),
    )
    params = CompressParams(method="magnitude", density=0.1, steps=5, batch_size=8, lr=1e-2)
    reference = convnet(8)
    reference.load_state_dict(encoder.state_dict())
    prune_global(reference, 0.1)
    masks = [m.weight != 0 for _, m in prunable_modules(reference)]
    losses = magnitude_compress(encoder, data, params)
    assert len(losses) == 5 and losses[-1] < losses[0]
    for (_, module), mask in zip(prunable_modules(encoder), masks, strict=True):
        assert not hasattr(module, "weight_mask")
        assert bool((module.weight[~mask] == 0).all())
    assert abs(weight_density(encoder) - 0.1) < 1e-3
