"""Cluster manifests: rendering the kustomize overlays in ``k8s/`` with the real kustomize
(:mod:`selfsup.deploy.render`), checking every object (:mod:`selfsup.deploy.checks`) and reading
what each shipped workload runs with the real parsers (:mod:`selfsup.deploy.workloads`)."""
