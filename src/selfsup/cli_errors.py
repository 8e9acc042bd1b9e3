"""How every ``selfsup`` command reports a user's mistake: one line on stderr, exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from selfsup.errors import SelfsupError

T = TypeVar("T")


def guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn a SelfsupError into ``error: …`` on stderr and exit code 2.

    Any other exception is a bug and keeps its traceback.
    """
    try:
        return action()
    except SelfsupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
