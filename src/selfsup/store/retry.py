"""Bounded retries with exponential backoff for transient store errors.

One place decides what is transient (connection refused/reset, timeouts, 5xx, S3 ``SlowDown``)
and how long to keep trying, so "server down" ends in a clear error after a known number of
attempts instead of hanging or failing on the first blip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("selfsup.store")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``base_delay_s * 2**i`` (capped) between them."""

    attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.base_delay_s * 2**attempt))


class RetriesExhausted(Exception):
    """Every attempt failed with a transient error; ``last`` is the final one."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"{attempts} attempts failed; last error: {last}")
        self.attempts, self.last = attempts, last


def with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    is_transient: Callable[[BaseException], bool],
    what: str,
) -> T:
    """Run ``action``; retry transient failures; raise :class:`RetriesExhausted` when out of tries.

    Non-transient errors propagate at once (wrong credentials do not get better by waiting).
    """
    for attempt in range(policy.attempts):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt + 1 == policy.attempts:
                raise RetriesExhausted(policy.attempts, exc) from exc
            wait = policy.delay(attempt)
            log.warning(
                "%s failed (%s); retry %d/%d in %.2f s",
                what,
                exc,
                attempt + 1,
                policy.attempts - 1,
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
