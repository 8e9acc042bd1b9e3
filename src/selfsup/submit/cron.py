"""Validation of KFP recurring-run cron expressions.

KFP schedules with robfig/cron in its 6-field form — ``second minute hour day-of-month month
day-of-week`` — so the everyday 5-field ``0 3 * * *`` is either rejected by the API server or,
worse, read with every field shifted by one. We check before anything is uploaded and, for a
5-field string, say exactly which 6-field string was probably meant.
"""

from __future__ import annotations

import re

from selfsup.pipeline.errors import PipelineError


class CronError(PipelineError):
    """A cron expression KFP would reject or misread (KFP wants 6 fields, seconds first)."""


# (name, lowest, highest) of the six fields, in KFP's order.
_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 6),
)
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec"
_DAYS = "sun mon tue wed thu fri sat"
_NAMES = {
    "month": {m: i + 1 for i, m in enumerate(_MONTHS.split())},
    "day-of-week": {d: i for i, d in enumerate(_DAYS.split())},
}
_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_EVERY = re.compile(r"^@every\s+(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_ATOM = re.compile(r"^(\*|\?|[0-9a-z]+(-[0-9a-z]+)?)(/(\d+))?$")


def _value(token: str, field: str, low: int, high: int) -> int:
    names = _NAMES.get(field, {})
    number = names.get(token) if token in names else int(token) if token.isdigit() else None
    if number is None:
        raise ValueError(f"{token!r} is not a number")
    if not low <= number <= high:
        raise ValueError(f"{number} is outside {low}-{high}")
    return number


def _check_field(text: str, field: str, low: int, high: int) -> None:
    for part in text.lower().split(","):
        match = _ATOM.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not '*', a value, a range a-b or a step x/n")
        base, step = match.group(1), match.group(4)
        if step is not None and int(step) == 0:
            raise ValueError("a step of 0 never fires")
        if base in ("*", "?"):
            if base == "?" and field not in ("day-of-month", "day-of-week"):
                raise ValueError("'?' is only allowed for day-of-month and day-of-week")
            continue
        first, _, last = base.partition("-")
        start = _value(first, field, low, high)
        if last and _value(last, field, low, high) < start:
            raise ValueError(f"range {base!r} runs backwards")


def validate_cron(expression: str) -> str:
    """Return ``expression`` normalised (single spaces) if KFP accepts it; else raise CronError.

    Accepts 6 fields (seconds first), the ``@hourly``-style descriptors and ``@every <duration>``.
    """
    text = " ".join(expression.split())
    if text in _DESCRIPTORS or _EVERY.match(text):
        return text
    fields = text.split(" ") if text else []
    if len(fields) == 5:
        raise CronError(
            f"cron {expression!r} has 5 fields, but KFP cron has 6 with seconds first "
            f"(second minute hour day-of-month month day-of-week): "
            f"use {'0 ' + text!r} to run at second 0 of the same times"
        )
    if len(fields) != 6:
        raise CronError(
            f"cron {expression!r} has {len(fields)} fields; KFP cron has 6, seconds first: "
            "'second minute hour day-of-month month day-of-week', e.g. '0 0 3 * * *' "
            "(daily at 03:00), or a descriptor such as '@daily'"
        )
    for value, (field, low, high) in zip(fields, _FIELDS, strict=True):
        try:
            _check_field(value, field, low, high)
        except ValueError as exc:
            raise CronError(f"cron {expression!r}: {field} field {value!r}: {exc}") from None
    return text
