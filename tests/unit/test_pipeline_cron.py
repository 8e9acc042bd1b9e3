"""KFP cron validation: 6 fields with seconds first; 5-field strings get the fix in the error."""

from __future__ import annotations

import pytest

from selfsup.submit.cron import CronError, validate_cron


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 3 * * *",
        "0 */15 * * * *",
        "30 0 2 1,15 * ?",
        "0 0 9-17 * * mon-fri",
        "0 0 0 1 jan,jul *",
        "59 59 23 31 12 6",
        "@daily",
        "@every 1h30m",
    ],
)
def test_accepts_six_field_cron_and_descriptors(expression: str) -> None:
    assert validate_cron(expression) == expression


def test_normalises_whitespace() -> None:
    assert validate_cron("  0  0 3 * *   * ") == "0 0 3 * * *"


def test_five_field_cron_is_rejected_with_the_six_field_fix() -> None:
    with pytest.raises(CronError) as error:
        validate_cron("0 3 * * *")
    message = str(error.value)
    assert "5 fields" in message and "seconds first" in message
    assert "'0 0 3 * * *'" in message  # the fix, ready to paste
    assert validate_cron("0 0 3 * * *")  # and the fix is itself valid


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("", "0 fields"),
        ("every day", "2 fields"),
        ("0 0 3 * * * 2026", "7 fields"),
        ("60 0 3 * * *", "second field '60': 60 is outside 0-59"),
        ("0 0 24 * * *", "hour field"),
        ("0 0 3 0 * *", "day-of-month field"),
        ("0 0 3 * 13 *", "month field"),
        ("0 0 3 * * 7", "day-of-week field"),
        ("0 0 3 * * funday", "not a number"),
        ("0 */0 * * * *", "step of 0"),
        ("0 0 17-9 * * *", "runs backwards"),
        ("? 0 3 * * *", "'?' is only allowed"),
        ("0 0 3 * * ; rm -rf /", "fields"),
        ("@fortnightly", "fields"),
    ],
)
def test_rejects_garbage_with_a_message_naming_the_problem(expression: str, fragment: str) -> None:
    with pytest.raises(CronError, match="cron") as error:
        validate_cron(expression)
    assert fragment in str(error.value)
