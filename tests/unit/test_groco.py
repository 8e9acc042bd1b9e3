"""GroCo: the sorting network's relaxed permutation, gradient signs, ordering, batching."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses.groco import groco_loss, same_image_mask, soft_permutation, sorting_loss
from selfsup.train.pairs import graph_positive_mask


@pytest.mark.parametrize("size", [2, 5, 11, 12])
def test_permutation_rows_and_columns_sum_to_one(size: int) -> None:
    values = torch.randn(6, size, generator=torch.Generator().manual_seed(size))
    permutation = soft_permutation(values, steepness=10.0)
    assert permutation.shape == (6, size, size)
    assert torch.allclose(permutation.sum(dim=1), torch.ones(6, size), atol=1e-5)
    assert torch.allclose(permutation.sum(dim=2), torch.ones(6, size), atol=1e-5)
    assert bool((permutation >= -1e-6).all())


def test_large_steepness_recovers_the_hard_permutation() -> None:
    values = torch.stack([torch.randperm(11).float() for _ in range(4)]) / 10  # gaps of 0.1
    permutation = soft_permutation(values, steepness=1e5)
    rank = values.argsort(dim=1).argsort(dim=1)  # rank of input i
    hard = F.one_hot(rank, 11).float()  # hard[b, i, rank] = 1: sorted = values @ hard
    assert torch.allclose(permutation, hard, atol=1e-3)
    assert torch.allclose(torch.bmm(values[:, None, :], hard)[:, 0], values.sort(dim=1).values)
    assert not torch.allclose(soft_permutation(values, steepness=1.0), hard, atol=1e-1)


def test_gradient_lowers_negatives_and_raises_positives() -> None:
    """dL/ds+ < 0 and dL/ds- > 0 for interleaved groups (the hard negatives GroCo selects)."""
    generator = torch.Generator().manual_seed(0)
    for steepness in (1.0, 5.0, 20.0):
        negatives = (torch.rand(8, 10, generator=generator) * 0.4 + 0.3).requires_grad_()
        positives = (torch.rand(8, 3, generator=generator) * 0.4 + 0.3).requires_grad_()
        sorting_loss(negatives, positives, steepness=steepness).sum().backward()
        assert negatives.grad is not None and positives.grad is not None
        assert bool((positives.grad < 0).all()), positives.grad
        assert bool((negatives.grad > 0).all()), negatives.grad


def test_negatives_far_below_every_positive_barely_matter() -> None:
    """Spread-out values: a negative ranked far below every positive gets a ~0 gradient (whose
    sign the relaxed negative-negative swaps may flip); the negatives' total still pushes down."""
    generator = torch.Generator().manual_seed(0)
    negatives = (torch.rand(8, 10, generator=generator) * 2 - 1).requires_grad_()
    positives = (torch.rand(8, 3, generator=generator) * 2 - 1).requires_grad_()
    sorting_loss(negatives, positives, steepness=5.0).sum().backward()
    assert negatives.grad is not None and positives.grad is not None
    assert bool((positives.grad < 0).all())
    assert bool((negatives.grad.sum(dim=1) > 0).all())
    assert float(negatives.grad.min()) > -0.1 * float(negatives.grad.max())


def test_loss_is_lower_when_every_positive_ranks_above_every_negative() -> None:
    negatives = torch.linspace(-0.5, 0.3, 10).repeat(2, 1)
    ordered = torch.tensor([[0.5, 0.7], [0.4, 0.9]])
    mixed = torch.tensor([[0.0, 0.7], [-0.2, 0.1]])
    good = sorting_loss(negatives, ordered, steepness=20.0)
    bad = sorting_loss(negatives, mixed, steepness=20.0)
    assert bool((good < bad).all()), (good, bad)
    assert float(sorting_loss(negatives, ordered, steepness=1e4).max()) < 1e-3  # ~0 when hard


def _reference(z: torch.Tensor, positives: torch.Tensor, k: int, steepness: float) -> float:
    """One anchor at a time: similarities, K hardest negatives, sort, bottom-K mass, BCE."""
    unit = F.normalize(z, dim=1)
    total = []
    for i in range(len(z)):
        pos = [float(unit[i] @ unit[j]) for j in range(len(z)) if j != i and positives[i, j]]
        neg = sorted(
            float(unit[i] @ unit[j]) for j in range(len(z)) if j != i and not positives[i, j]
        )[-k:]
        if not pos or not neg:
            continue
        values = torch.tensor([neg + sorted(pos)])
        permutation = soft_permutation(values, steepness)[0]
        q = permutation[:, :k].sum(dim=1).clamp(0, 1)
        target = [1.0] * k + [0.0] * len(pos)
        total.append(
            sum(
                -math.log(float(q[n])) if t else -math.log(1 - float(q[n]))
                for n, t in enumerate(target)
            )
            / len(target)
        )
    return sum(total) / len(total)


def test_batched_loss_matches_a_per_anchor_loop() -> None:
    z = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    two_views = same_image_mask(6)
    assert float(groco_loss(z, two_views, k=4, steepness=5.0)) == pytest.approx(
        _reference(z, two_views, 4, 5.0), rel=1e-4
    )
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 5])  # 0-3 positives per anchor
    mask = groups[:, None] == groups[None, :]
    assert float(groco_loss(z, mask, k=3, steepness=5.0)) == pytest.approx(
        _reference(z, mask, 3, 5.0), rel=1e-4
    )


def test_gradient_flows_through_the_anchor_side_only() -> None:
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(2), requires_grad=True)
    mask = same_image_mask(4)
    groco_loss(z, mask, k=2, steepness=5.0).backward()
    assert z.grad is not None
    # anchor-side-only gradient: d loss / d z_i is the gradient of anchor i's own loss
    only_first = torch.zeros_like(z)
    for i in range(8):
        zi = z.detach().clone().requires_grad_()
        fixed = zi.detach()
        zz = torch.where(torch.arange(8)[:, None] == i, zi, fixed)
        unit = F.normalize(zz, dim=1)
        sims = unit[i] @ unit.detach().T
        pos = sims[mask[i] & (torch.arange(8) != i)]
        neg = sims[~mask[i]].topk(2).values
        (sorting_loss(neg[None], pos[None], 5.0).sum() / 8).backward()
        assert zi.grad is not None
        only_first[i] = zi.grad[i]
    assert torch.allclose(z.grad, only_first, atol=1e-6)


def test_k_shrinks_to_the_available_negatives_and_none_is_an_error() -> None:
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    mask = same_image_mask(2)
    assert float(groco_loss(z, mask, k=3)) == pytest.approx(float(groco_loss(z, mask, k=2)))
    with pytest.raises(ValueError, match="negative"):
        groco_loss(z, torch.ones(4, 4, dtype=torch.bool), k=3)
    hub = mask.clone()
    hub[0, :] = hub[:, 0] = True  # anchor 0: all positives, no negative -> left out
    assert float(groco_loss(z, hub, k=3, steepness=5.0)) == pytest.approx(
        _reference(z, hub, 1, 5.0), rel=1e-4
    )  # anchors 1 and 3 have one negative: K shrinks to 1 for the batch


def test_graph_positive_mask_matches_a_loop() -> None:
    nodes = torch.tensor([0, 3, 5, 3, 7, 1])
    edges = torch.tensor([[0, 5], [3, 7], [1, 2]])
    linked = {(int(a), int(b)) for a, b in edges} | {(int(b), int(a)) for a, b in edges}
    expected = torch.tensor(
        [[int(a) == int(b) or (int(a), int(b)) in linked for b in nodes] for a in nodes]
    )
    assert torch.equal(graph_positive_mask(nodes, edges), expected)
