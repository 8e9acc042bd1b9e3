"""The membership-inference attack: it separates a clearly memorised toy, and it does not
pretend to separate when members and non-members look alike; forgotten classes."""

from __future__ import annotations

import torch

from selfsup.unlearn.audit import attack_features, attack_sanity, forgotten_classes, member_rate


def _logits(n: int, confident: bool, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a 4-class model: confident and right (memorised) or near-uniform."""
    labels = torch.randint(0, 4, (n,), generator=gen)
    logits = 0.3 * torch.randn(n, 4, generator=gen)
    if confident:
        logits[torch.arange(n), labels] += 6.0
    return logits, labels


def test_attack_features_are_loss_entropy_and_top_probability() -> None:
    logits, labels = torch.tensor([[0.0, 0.0]]), torch.tensor([1])
    loss, entropy, top = attack_features(logits, labels)[0].tolist()
    assert abs(loss - 0.6931) < 1e-4 and abs(entropy - 0.6931) < 1e-4 and abs(top - 0.5) < 1e-9


def test_attack_separates_a_memorised_toy() -> None:
    gen = torch.Generator().manual_seed(0)
    members = attack_features(*_logits(200, True, gen))
    non_members = attack_features(*_logits(200, False, gen))
    assert attack_sanity(members, non_members, torch.Generator().manual_seed(1)) > 0.95
    # memorised queries are called members, unseen-looking ones are not
    memorised = attack_features(*_logits(50, True, gen))
    unseen = attack_features(*_logits(50, False, gen))
    assert member_rate(members, non_members, memorised, seed=0) > 0.9
    assert member_rate(members, non_members, unseen, seed=0) < 0.1


def test_attack_is_near_chance_when_nothing_is_memorised() -> None:
    gen = torch.Generator().manual_seed(2)
    members = attack_features(*_logits(400, False, gen))
    non_members = attack_features(*_logits(400, False, gen))
    accuracy = attack_sanity(members, non_members, torch.Generator().manual_seed(3))
    assert 0.4 < accuracy < 0.6  # below the default trust threshold of 0.55 on average


def test_forgotten_classes_are_those_removed_entirely() -> None:
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    assert forgotten_classes(labels, torch.tensor([0, 3, 1])) == [0]
    assert forgotten_classes(labels, torch.tensor([1])) == []
