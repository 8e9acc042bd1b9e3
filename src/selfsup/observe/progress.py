"""Progress: a tqdm bar on a terminal; off one (CI logs, Kubernetes pods) a log line at most every
``log_every_s`` seconds with the share done, the rate and the ETA, so a long stage is never
silent for longer than that."""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType

from tqdm import tqdm

log = logging.getLogger("selfsup")

# Off a terminal, the longest a running stage stays silent (the bound is 30 s).
LOG_EVERY_S = 20.0


def _interactive() -> bool:
    return sys.stderr.isatty()


def _duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """``total`` units of work named ``desc``; safe to update from worker threads.

    ``unit="B"`` counts bytes (shown in MB, MB/s); anything else counts steps. ``update`` takes
    the latest metrics (loss, images/s), shown on the bar or in the log line.
    """

    def __init__(
        self, total: int, desc: str, *, unit: str = "step", log_every_s: float = LOG_EVERY_S
    ) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self._metrics: dict[str, float] = {}
        self._lock = threading.Lock()
        self._start = self._last_log = time.monotonic()
        self._log_every = log_every_s
        byte_options = {"unit": "B", "unit_scale": True} if unit == "B" else {}
        self._bar = (
            tqdm(total=total, desc=desc, dynamic_ncols=True, leave=False, **byte_options)
            if _interactive()
            else None
        )

    def update(self, n: int = 1, **metrics: float) -> None:
        with self._lock:
            self.done += n
            self._metrics.update(metrics)
            if self._bar is not None:
                self._bar.update(n)
                if metrics:
                    shown = {k: f"{v:.4g}" for k, v in metrics.items()}
                    self._bar.set_postfix(shown, refresh=False)
                return
            now = time.monotonic()
            if now - self._last_log >= self._log_every:
                self._last_log = now
                log.info("%s: %s", self.desc, self.summary(now))

    def step(self, **metrics: float) -> None:
        """One step done, with the latest ``metrics``."""
        self.update(1, **metrics)

    def summary(self, now: float | None = None) -> str:
        """Done of total (share), rate, ETA and the latest metrics, in one line."""
        elapsed = max((time.monotonic() if now is None else now) - self._start, 1e-9)
        rate = self.done / elapsed
        if self.unit == "B":
            text = f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB, {rate / 1e6:.1f} MB/s"
        else:
            text = f"{self.done}/{self.total} {self.unit}s, {rate:.3g} {self.unit}s/s"
        if self.total:
            text = text.replace(",", f" ({100 * self.done / self.total:.0f}%),", 1)
            if 0 < self.done < self.total:
                text += f", ETA {_duration((self.total - self.done) / rate)}"
        extra = ", ".join(f"{k} {v:.4g}" for k, v in self._metrics.items())
        return f"{text}, {_duration(elapsed)} elapsed" + (f", {extra}" if extra else "")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        elif exc_type is None and self._last_log > self._start:  # long enough to have logged
            log.info("%s: done, %s", self.desc, self.summary())
