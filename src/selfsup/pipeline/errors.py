"""Errors of the Kubeflow layer (all :class:`~selfsup.errors.SelfsupError`: the CLI prints them)."""

from selfsup.errors import SelfsupError


class PipelineError(SelfsupError):
    """A pipeline that cannot be compiled, run locally, submitted or scheduled as asked."""


class CronError(PipelineError):
    """A cron expression KFP would reject or misread (KFP wants 6 fields, seconds first)."""
