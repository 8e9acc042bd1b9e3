"""Kubeflow Pipelines for the selfsup stages: the definitions and running them offline.

The stages stay plain library functions. This package wraps them: one function per task
(:mod:`~selfsup.pipeline.components`) made a lightweight component bound to the project image,
what a task does around its stage call in the pod (:mod:`~selfsup.pipeline.runtime`), the DAGs
(:mod:`~selfsup.pipeline.dags`), the pods' settings, compilation and ``run-local``. Submitting
to a server is :mod:`selfsup.submit`; the commands are :mod:`selfsup.cli_pipeline`.
"""
