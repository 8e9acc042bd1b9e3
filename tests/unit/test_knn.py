"""kNN against explicit Python loops (the reference is written independently of the torch code)."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.knn import knn_classify, per_class_accuracy, top1_accuracy


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _loop_knn(
    bank: torch.Tensor,
    labels: torch.Tensor,
    query: torch.Tensor,
    k: int,
    temperature: float,
    classes: int,
) -> list[float]:
    """Vote shares of one query, by sorting every cosine similarity in plain Python."""
    sims = sorted(
        (
            (_cosine(query.tolist(), row.tolist()), int(lab))
            for row, lab in zip(bank, labels, strict=True)
        ),
        reverse=True,
    )[:k]
    votes = [0.0] * classes
    for s, lab in sims:
        votes[lab] += math.exp(s / temperature)
    total = sum(votes)
    return [v / total for v in votes]


def test_k1_equals_brute_force_nearest_neighbour() -> None:
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(50, 8, generator=g)
    labels = torch.randint(0, 4, (50,), generator=g)
    queries = torch.randn(40, 8, generator=g)
    result = knn_classify(bank, labels, queries, k=1, batch_size=7)
    expected = []
    for q in queries:
        best = max(range(len(bank)), key=lambda i: _cosine(q.tolist(), bank[i].tolist()))
        expected.append(int(labels[best]))
    assert result.predictions.tolist() == expected
    assert result.k == 1


def test_one_hot_features_classify_perfectly() -> None:
    labels = torch.arange(60) % 5
    bank = torch.nn.functional.one_hot(labels, 5).float()
    test_labels = torch.tensor([4, 0, 3, 1, 2, 2])
    queries = torch.nn.functional.one_hot(test_labels, 5).float()
    result = knn_classify(bank, labels, queries, k=20)
    assert top1_accuracy(result.predictions, test_labels) == 1.0


def test_weighted_vote_matches_loop_for_k5() -> None:
    g = torch.Generator().manual_seed(1)
    bank = torch.randn(30, 6, generator=g)
    labels = torch.randint(0, 3, (30,), generator=g)
    queries = torch.randn(12, 6, generator=g)
    result = knn_classify(bank, labels, queries, num_classes=3, k=5, temperature=0.5, batch_size=5)
    for i, q in enumerate(queries):
        shares = _loop_knn(bank, labels, q, 5, 0.5, 3)
        assert result.scores[i].tolist() == pytest.approx(shares, abs=1e-5)
        assert int(result.predictions[i]) == max(range(3), key=lambda c: shares[c])


def test_k_larger_than_bank_is_clipped() -> None:
    bank = torch.randn(4, 3)
    result = knn_classify(bank, torch.tensor([0, 1, 0, 1]), torch.randn(2, 3), k=200)
    assert result.k == 4
    assert result.scores.shape == (2, 2)


def test_small_temperature_does_not_overflow() -> None:
    g = torch.Generator().manual_seed(2)
    bank, queries = torch.randn(20, 4, generator=g), torch.randn(5, 4, generator=g)
    result = knn_classify(
        bank, torch.randint(0, 2, (20,), generator=g), queries, k=10, temperature=1e-3
    )
    assert bool(torch.isfinite(result.scores).all())


def test_unlabeled_bank_is_refused() -> None:
    with pytest.raises(SelfsupError, match="unlabeled"):
        knn_classify(torch.randn(3, 2), torch.tensor([0, -1, 1]), torch.randn(1, 2))


def test_per_class_accuracy_by_hand() -> None:
    predictions = torch.tensor([0, 0, 1, 1, 2])
    labels = torch.tensor([0, 1, 1, 1, 0])
    acc = per_class_accuracy(predictions, labels, 3)
    assert acc[0] == pytest.approx(0.5)
    assert acc[1] == pytest.approx(2 / 3)
    assert math.isnan(acc[2])


def test_confusion_matrix_matches_an_explicit_count() -> None:
    from selfsup.evaluate import confusion_matrix

    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (200,), generator=gen)
    predictions = torch.randint(0, 4, (200,), generator=gen)
    expected = [[0] * 4 for _ in range(4)]
    for truth, guess in zip(labels.tolist(), predictions.tolist(), strict=True):
        expected[truth][guess] += 1
    assert confusion_matrix(predictions, labels, 4) == expected
