"""Warm-up + cosine schedule values and LARS against its update formula."""

import itertools
import math

import pytest
import torch

from selfsup.train.lars import LARS
from selfsup.train.schedule import warmup_cosine


def test_warmup_is_linear_then_cosine_reaches_zero() -> None:
    total, warmup = 100, 10
    assert [warmup_cosine(s, total, warmup) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert warmup_cosine(warmup, total, warmup) == pytest.approx(1.0)
    midpoint = warmup + (total - warmup) // 2
    assert warmup_cosine(midpoint, total, warmup) == pytest.approx(0.5)
    assert warmup_cosine(total, total, warmup) == pytest.approx(0.0, abs=1e-12)
    values = [warmup_cosine(s, total, warmup) for s in range(warmup, total)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_no_warmup_starts_at_full_rate() -> None:
    assert warmup_cosine(0, 50, 0) == pytest.approx(1.0)
    assert warmup_cosine(25, 50, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_lars_first_step_matches_formula() -> None:
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3))
    bias = torch.nn.Parameter(torch.randn(4))
    weight.grad, bias.grad = torch.randn(4, 3), torch.randn(4)
    w0, b0, gw, gb = weight.detach().clone(), bias.detach().clone(), weight.grad, bias.grad
    lr, wd, eta = 0.5, 0.01, 0.001
    LARS([weight, bias], lr=lr, weight_decay=wd, trust_coefficient=eta).step()
    decayed = gw + wd * w0
    trust = eta * w0.norm() / decayed.norm()
    torch.testing.assert_close(weight.detach(), w0 - lr * trust * decayed)
    torch.testing.assert_close(bias.detach(), b0 - lr * gb)  # no decay, no adaptation
