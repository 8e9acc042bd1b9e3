"""Kubeflow Pipelines for the selfsup stages.

The stages stay plain library functions; this package only wraps them: container components that
run ``selfsup pipeline task <stage>`` in the project image (``components/``), their lightweight
twins for offline ``run-local`` (same library calls, :mod:`selfsup.pipeline.tasks`), the DAGs
(:mod:`selfsup.pipeline.train`), one helper each for task resources, the GPU node pool and
secrets, cron validation, compilation and the KFP API client calls.
"""
