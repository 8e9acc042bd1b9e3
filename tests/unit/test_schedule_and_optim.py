"""Warm-up + cosine schedule values, the progressive-resizing ramp, and LARS against its update
formula."""

import itertools
import math

import pytest
import torch

from selfsup.config import PretrainParams, ProgressiveResize
from selfsup.train.lars import LARS
from selfsup.train.schedule import view_size, warmup_cosine


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


def test_view_size_holds_then_ramps_linearly_to_full_size() -> None:
    ramp = ProgressiveResize(min_size=16, hold=0.25, ramp=0.5, multiple=4)
    # 8 epochs, p = e/8: 0 and 1 hold 16; 2, 3, 4, 5 grow 16 + (p - 0.25)/0.5 * 16 = 16, 20, 24,
    # 28; from p = 0.75 on the full 32
    assert [view_size(e, 8, 32, ramp) for e in range(8)] == [16, 16, 16, 20, 24, 28, 32, 32]
    assert [view_size(e, 8, 32, None) for e in range(3)] == [32, 32, 32]


def test_view_size_default_halves_and_always_ends_at_full_size() -> None:
    default = PretrainParams().progressive_resize
    assert default == ProgressiveResize(min_size=24, hold=0.5)
    assert [view_size(e, 8, 32, default) for e in range(8)] == [24] * 4 + [32] * 4
    assert [view_size(e, 2, 32, default) for e in range(2)] == [24, 32]
    assert view_size(0, 1, 32, default) == 32  # one epoch: it is the last
    assert view_size(0, 8, 20, default) == 20  # images smaller than min_size: never upsampled


def test_view_size_rounds_down_to_the_multiple() -> None:
    ramp = ProgressiveResize(min_size=24, hold=0.25, ramp=0.5, multiple=8)
    # 24 + (p - 0.25)/0.5 * 8 gives 24, 26, 28, 30 on the ramp: all round down to 24
    assert [view_size(e, 8, 32, ramp) for e in range(8)] == [24] * 6 + [32] * 2


@pytest.mark.parametrize(
    ("ramp", "message"),
    [
        ({"min_size": 16, "hold": 0.75, "ramp": 0.5}, "exceeds 1"),
        ({"min_size": 16, "hold": 0.0}, "greater than 0"),
        ({"min_size": 4, "hold": 0.5}, "greater than or equal to 8"),
    ],
)
def test_bad_ramps_are_clear_errors(ramp: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PretrainParams(progressive_resize=ramp)  # type: ignore[arg-type]


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
