"""ECE on cases whose answer follows from the definition."""

from __future__ import annotations

import pytest
import torch

from selfsup.evaluate.calibration import calibration_from_confidences, expected_calibration_error


def test_constant_confidence_gap() -> None:
    # 100 predictions at confidence 0.9 of which 60 are right: ECE = |0.6 - 0.9| = 0.3.
    probs = torch.tensor([[0.9, 0.1]]).repeat(100, 1)
    labels = torch.tensor([0] * 60 + [1] * 40)
    result = expected_calibration_error(probs, labels, bins=10)
    assert abs(result.ece - 0.3) < 1e-6
    occupied = [b for b in result.bins if b.count]
    assert len(occupied) == 1
    assert occupied[0].count == 100
    assert occupied[0].accuracy == pytest.approx(0.6)
    assert occupied[0].confidence == pytest.approx(0.9, abs=1e-6)


def test_perfect_calibration_is_zero() -> None:
    # In each bin accuracy equals confidence: 20 samples at 0.55 with 11 right, 20 at 0.95
    # with 19 right.
    confidences = torch.tensor([0.55] * 20 + [0.95] * 20, dtype=torch.float64)
    correct = torch.tensor([1] * 11 + [0] * 9 + [1] * 19 + [0] * 1, dtype=torch.bool)
    result = calibration_from_confidences(confidences, correct, bins=10)
    assert result.ece == pytest.approx(0.0, abs=1e-12)


def test_ece_weights_bins_by_size() -> None:
    # bin (0.3,0.4]: 10 samples at 0.35, 0 right -> gap 0.35; bin (0.9,1]: 30 at 1.0, all right.
    confidences = torch.tensor([0.35] * 10 + [1.0] * 30, dtype=torch.float64)
    correct = torch.tensor([0] * 10 + [1] * 30, dtype=torch.bool)
    result = calibration_from_confidences(confidences, correct, bins=10)
    assert result.ece == pytest.approx(10 / 40 * 0.35)
    assert [b.count for b in result.bins] == [0, 0, 0, 10, 0, 0, 0, 0, 0, 30]
