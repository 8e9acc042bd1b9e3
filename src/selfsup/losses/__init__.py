"""Self-supervised losses, one idea per module."""

from selfsup.losses.nt_xent import nt_xent
from selfsup.losses.triplet import choose_negatives, triplet_loss

__all__ = ["choose_negatives", "nt_xent", "triplet_loss"]
