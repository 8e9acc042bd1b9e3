"""The audit of an unlearned model: accuracies and a membership-inference attack.

Accuracies (0..1) on the remaining training data, the forget data and the test split, the test
split divided into the *remaining* and the *forgotten* classes (a class is forgotten when every
one of its training samples is in the forget list; without one, ``test_forget`` is null).

Membership inference (MIA): a logistic-regression attack on per-sample features of the model's
outputs — cross-entropy loss, prediction entropy, top probability — trained to tell members
(remaining training samples) from non-members (the test split), then applied to the forget set.
``attack_forget_member_rate`` is the share of forget samples it calls members: for the original
model it should be high, for a model that never saw them (retrain) it is the non-member rate;
unlearning should bring it to retrain's value. The attack is only evidence when it can tell
members at all, so :func:`attack_sanity` measures its held-out accuracy on the *original* model
(balanced members / non-members, trained on one half, scored on the other); below
``mia_min_accuracy`` the audit marks every attack figure as untrusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.evaluate.knn import top1_accuracy
from selfsup.evaluate.linear_probe import LinearProbe, fit_linear_probe
from selfsup.models.embed import embed

ATTACK_ITERATIONS = 100


@dataclass(frozen=True)
class AuditData:
    """Images and labels the audit scores on (labels are used here, never by LAF)."""

    remaining: torch.Tensor
    remaining_labels: torch.Tensor
    forget: torch.Tensor
    forget_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    forgotten_classes: list[int]
    members: torch.Tensor  # indices into ``remaining``: the attack's member sample


def forgotten_classes(train_labels: torch.Tensor, forget_index: torch.Tensor) -> list[int]:
    """Classes whose every training sample is in ``forget_index``."""
    forgotten = torch.zeros(len(train_labels), dtype=torch.bool)
    forgotten[forget_index] = True
    return [
        int(c)
        for c in torch.unique(train_labels[forget_index]).tolist()
        if bool(forgotten[train_labels == c].all())
    ]


@torch.no_grad()
def logits_of(
    encoder: nn.Module, head: nn.Module, images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Class logits ``[N, C]`` of uint8 images through ``encoder`` then ``head``."""
    features = embed(encoder, images, batch_size)
    out: torch.Tensor = head.to(features.device)(features)
    return out


def attack_features(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample ``[loss, entropy, max probability]`` ``[N, 3]`` of a model's outputs."""
    log_p = F.log_softmax(logits.double(), dim=1)
    loss = F.nll_loss(log_p, labels, reduction="none")
    entropy = -(log_p.exp() * log_p).sum(dim=1)
    return torch.stack([loss, entropy, log_p.exp().max(dim=1).values], dim=1)


def fit_attack(members: torch.Tensor, non_members: torch.Tensor) -> LinearProbe:
    """Binary logistic regression, members = class 1 (the repo's probe with two classes)."""
    x = torch.cat([members, non_members])
    y = torch.cat(
        [
            torch.ones(len(members), dtype=torch.long),
            torch.zeros(len(non_members), dtype=torch.long),
        ]
    )
    return fit_linear_probe(x, y, num_classes=2, epochs=ATTACK_ITERATIONS, weight_decay=1e-4)


def _balanced(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> tuple[Any, Any]:
    n = min(len(a), len(b))
    return (
        a[torch.randperm(len(a), generator=generator)[:n]],
        b[torch.randperm(len(b), generator=generator)[:n]],
    )


def attack_sanity(
    members: torch.Tensor, non_members: torch.Tensor, generator: torch.Generator
) -> float:
    """Held-out accuracy of the attack: balanced, fit on one half, scored on the other."""
    members, non_members = _balanced(members, non_members, generator)
    half = len(members) // 2
    attack = fit_attack(members[:half], non_members[:half])
    x = torch.cat([members[half:], non_members[half:]])
    y = torch.cat(
        [
            torch.ones(len(members) - half, dtype=torch.long),
            torch.zeros(len(non_members) - half, dtype=torch.long),
        ]
    )
    return top1_accuracy(attack.predict(x), y)


def member_rate(
    members: torch.Tensor, non_members: torch.Tensor, queries: torch.Tensor, seed: int
) -> float:
    """Share of ``queries`` a balanced attack trained on members vs non-members calls members."""
    members, non_members = _balanced(members, non_members, torch.Generator().manual_seed(seed))
    attack = fit_attack(members, non_members)
    return float(attack.predict(queries).double().mean())


def audit_model(
    encoder: nn.Module, head: nn.Module, data: AuditData, batch_size: int, seed: int
) -> dict[str, Any]:
    """Accuracies and the attack's forget-member rate of one model (encoder + head)."""
    device = next(encoder.parameters()).device
    outputs = {
        name: logits_of(encoder, head, images.to(device), batch_size).cpu()
        for name, images in (
            ("remaining", data.remaining),
            ("forget", data.forget),
            ("test", data.test),
        )
    }
    predictions = {name: logits.argmax(dim=1) for name, logits in outputs.items()}
    in_forgotten = torch.isin(data.test_labels, torch.tensor(data.forgotten_classes))
    test_pred = predictions["test"]
    result: dict[str, Any] = {
        "acc_remaining": top1_accuracy(predictions["remaining"], data.remaining_labels),
        "acc_forget": top1_accuracy(predictions["forget"], data.forget_labels),
        "acc_test": top1_accuracy(test_pred, data.test_labels),
        "acc_test_remaining": top1_accuracy(
            test_pred[~in_forgotten], data.test_labels[~in_forgotten]
        ),
        "acc_test_forget": (
            top1_accuracy(test_pred[in_forgotten], data.test_labels[in_forgotten])
            if bool(in_forgotten.any())
            else None
        ),
    }
    members = attack_features(
        outputs["remaining"][data.members], data.remaining_labels[data.members]
    )
    non_members = attack_features(outputs["test"], data.test_labels)
    queries = attack_features(outputs["forget"], data.forget_labels)
    result["attack_forget_member_rate"] = member_rate(members, non_members, queries, seed)
    return result


def original_attack_accuracy(
    encoder: nn.Module, head: nn.Module, data: AuditData, batch_size: int, seed: int
) -> float:
    """:func:`attack_sanity` on the original model's outputs."""
    device = next(encoder.parameters()).device
    member_images = data.remaining[data.members].to(device)
    members = attack_features(
        logits_of(encoder, head, member_images, batch_size).cpu(),
        data.remaining_labels[data.members],
    )
    non_members = attack_features(
        logits_of(encoder, head, data.test.to(device), batch_size).cpu(), data.test_labels
    )
    return attack_sanity(members, non_members, torch.Generator().manual_seed(seed))
