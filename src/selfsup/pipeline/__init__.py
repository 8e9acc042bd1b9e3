"""Kubeflow Pipelines for the selfsup stages.

The stages stay plain library functions. This package wraps them: one function per task
(:mod:`~selfsup.pipeline.components`) made a lightweight component bound to the project image,
what each task does around its stage call in the pod (:mod:`~selfsup.pipeline.runtime`), the
DAGs (:mod:`~selfsup.pipeline.dags`), one helper each for resources, the GPU pool and secrets,
cron validation, compilation, ``run-local`` and the KFP API client calls.
"""
