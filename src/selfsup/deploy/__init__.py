"""Cluster manifests: rendering the kustomize overlays in ``k8s/`` and checking every object.

``kubectl kustomize`` is the renderer to deploy with; :mod:`selfsup.deploy.kustomize` renders
the subset of kustomize the overlays use in pure Python, so the checks run on machines without
kubectl (a test holds it to kubectl's own rendering, committed under ``k8s/rendered/``).
"""
