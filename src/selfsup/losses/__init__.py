"""Self-supervised losses, one idea per module."""

from selfsup.losses.nt_xent import nt_xent

__all__ = ["nt_xent"]
