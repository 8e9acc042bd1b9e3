"""Submitting compiled pipelines to a Kubeflow Pipelines server: runs and recurring runs
(:mod:`~selfsup.submit.client`), with cron expressions checked first
(:mod:`~selfsup.submit.cron`)."""
