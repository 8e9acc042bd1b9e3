"""Errors of the Kubeflow layer (all :class:`~selfsup.errors.SelfsupError`: the CLI prints them)."""

from selfsup.errors import SelfsupError


class PipelineError(SelfsupError):
    """A pipeline that cannot be compiled, run locally, submitted or scheduled as asked."""
