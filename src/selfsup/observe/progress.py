"""Progress: a tqdm bar on a terminal, plain log lines otherwise (CI logs, Kubernetes pods)."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from tqdm import tqdm

log = logging.getLogger("selfsup")


class StepProgress:
    """A per-step bar with live metrics; disabled (no output) when stderr is not a terminal.

    Callers log one line per epoch themselves, so non-interactive runs still show progress.
    """

    def __init__(self, total: int, desc: str) -> None:
        self._bar = tqdm(
            total=total, desc=desc, disable=not sys.stderr.isatty(), dynamic_ncols=True, leave=False
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
