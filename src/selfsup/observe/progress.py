"""Progress: a tqdm bar on a terminal, plain log lines otherwise (CI logs, Kubernetes pods)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType

from tqdm import tqdm

log = logging.getLogger("selfsup")


def _interactive() -> bool:
    return sys.stderr.isatty()


class StepProgress:
    """A per-step bar with live metrics; disabled (no output) when stderr is not a terminal.

    Callers log one line per epoch themselves, so non-interactive runs still show progress.
    """

    def __init__(self, total: int, desc: str) -> None:
        self._bar = tqdm(
            total=total, desc=desc, disable=not _interactive(), dynamic_ncols=True, leave=False
        )

    def step(self, **metrics: float) -> None:
        self._bar.update(1)
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.close()


class ByteProgress:
    """Bytes moved by a transfer (upload, download), safe to update from worker threads.

    On a terminal: a tqdm bar in B/s units. Otherwise: one log line at most every
    ``log_every_s`` seconds and one at the end, so a pod's log shows that a long upload is alive
    without flooding it.
    """

    def __init__(self, total: int, desc: str, log_every_s: float = 5.0) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self._lock = threading.Lock()
        self._start = self._last_log = time.monotonic()
        self._log_every = log_every_s
        self._bar = (
            tqdm(total=total, desc=desc, unit="B", unit_scale=True, dynamic_ncols=True, leave=False)
            if _interactive()
            else None
        )

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
                return
            now = time.monotonic()
            if now - self._last_log >= self._log_every:
                self._last_log = now
                log.info("%s: %s", self.desc, self._summary(now))

    def _summary(self, now: float) -> str:
        seconds = max(now - self._start, 1e-9)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = self.done / 1e6 / seconds
        return f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB{share}, {rate:.1f} MB/s"

    def __enter__(self) -> ByteProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        elif exc_type is None:
            log.info("%s: done, %s", self.desc, self._summary(time.monotonic()))
