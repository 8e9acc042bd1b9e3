"""Encoders, heads and the on-disk model format."""

from selfsup.models.encoders import Encoder, build_encoder
from selfsup.models.projector import ProjectionHead

__all__ = ["Encoder", "ProjectionHead", "build_encoder"]
