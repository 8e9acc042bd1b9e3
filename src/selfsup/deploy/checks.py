"""Checks every rendered Kubernetes object must pass before it reaches a cluster.

Schema: ``kubernetes-validate`` in strict mode (unknown fields are errors, so a typo such as
``resource:`` for ``resources:`` is caught) against a recent Kubernetes API. Policy: every
container states CPU and memory requests *and* limits, runs as non-root, and names an image by
an explicit tag other than ``latest`` (a re-pushed tag must not change what runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from selfsup.deploy.kustomize import Object, key

KUBERNETES_VERSION = "1.33.0"


def schema_problems(obj: Object, version: str = KUBERNETES_VERSION) -> list[str]:
    """Strict schema validation of one object; an empty list when it is valid."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{key(obj)}: {exc.message} at {'/'.join(str(p) for p in exc.path)}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{key(obj)}: no schema for {obj.get('apiVersion')}/{obj['kind']}: {exc}"]
    return []


def pod_spec(obj: Object) -> dict[str, Any] | None:
    """The pod template of a workload object (Pod, Deployment, StatefulSet, Job, CronJob)."""
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        return dict(spec)
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return dict(template.get("spec", {})) if template else None


def _image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses :latest"
    return None


def policy_problems(obj: Object) -> list[str]:
    """Requests/limits, non-root and pinned-image problems of one object's containers."""
    pod = pod_spec(obj)
    if pod is None:
        return []
    problems = []
    pod_non_root = pod.get("securityContext", {}).get("runAsNonRoot")
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        where = f"{key(obj)} container {container.get('name')!r}"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(kind, {}))
            if missing:
                problems.append(f"{where}: no {kind} for {sorted(missing)}")
        context = container.get("securityContext", {})
        if context.get("runAsNonRoot", pod_non_root) is not True:
            problems.append(f"{where}: securityContext.runAsNonRoot is not true")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        image_problem = _image_problem(str(container.get("image", "")))
        if image_problem:
            problems.append(f"{where}: {image_problem}")
    return problems


def all_problems(objects: Iterable[Object], version: str = KUBERNETES_VERSION) -> list[str]:
    """Schema and policy problems of every object."""
    problems: list[str] = []
    for obj in objects:
        problems += schema_problems(obj, version) + policy_problems(obj)
    return problems
