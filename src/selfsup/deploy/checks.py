"""Checks every rendered Kubernetes object must pass before it reaches a cluster.

Schema: ``kubernetes-validate`` in strict mode (unknown fields are errors, so a typo such as
``resource:`` for ``resources:`` is caught) against a recent Kubernetes API. Policy: every
container states CPU and memory requests *and* limits, runs as non-root, and names an image by
an explicit tag other than ``latest`` (a re-pushed tag must not change what runs).

Kubeflow Trainer objects (``trainer.kubeflow.org``) are custom resources that
``kubernetes-validate`` has no schema for: a ``TrainingRuntime``'s pod templates are checked as the
``batch/v1`` Jobs they become (full strict schema + policy), and both kinds' own fields against
the ``v1alpha1`` fields this project uses (unknown ones are errors, as in strict mode).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from selfsup.deploy.render import Object, key

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
    objects = list(objects)
    problems: list[str] = []
    for obj in objects:
        if str(obj.get("apiVersion", "")).startswith(f"{TRAINER_GROUP}/"):
            problems += trainer_problems(obj, objects)
        else:
            problems += schema_problems(obj, version) + policy_problems(obj)
    return problems


TRAINER_GROUP = "trainer.kubeflow.org"
# The trainer.kubeflow.org/v1alpha1 fields this project writes (a subset of the CRDs' schema).
_TRAINER_FIELDS: dict[str, dict[str, set[str]]] = {
    "TrainJob": {
        "spec": {"runtimeRef", "trainer", "initializer", "podTemplateOverrides", "suspend",
                 "labels", "annotations", "managedBy", "activeDeadlineSeconds"},
        "trainer": {"image", "command", "args", "env", "numNodes", "resourcesPerNode",
                    "numProcPerNode"},
        "runtimeRef": {"name", "apiGroup", "kind"},
    },
    "TrainingRuntime": {
        "spec": {"mlPolicy", "podGroupPolicy", "template"},
        "mlPolicy": {"numNodes", "torch", "mpi"},
    },
}  # fmt: skip


def _unknown(where: str, section: dict[str, Any], known: set[str]) -> list[str]:
    return [f"{where}: unknown field {name!r}" for name in sorted(set(section) - known)]


def runtime_jobs(obj: Object) -> list[Object]:
    """A TrainingRuntime's replicated jobs as the ``batch/v1`` Jobs the controller creates."""
    jobs = obj.get("spec", {}).get("template", {}).get("spec", {}).get("replicatedJobs", [])
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{obj['metadata']['name']}-{job['name']}",
                "namespace": obj["metadata"].get("namespace", "default"),
                **job.get("template", {}).get("metadata", {}),
            },
            "spec": job.get("template", {}).get("spec", {}),
        }
        for job in jobs
    ]


def trainer_problems(obj: Object, objects: Iterable[Object]) -> list[str]:
    """Field, policy and reference problems of a Kubeflow Trainer object."""
    where = str(key(obj))
    kind = obj["kind"]
    if obj.get("apiVersion") != f"{TRAINER_GROUP}/v1alpha1" or kind not in _TRAINER_FIELDS:
        return [f"{where}: unsupported {obj.get('apiVersion')}/{kind}"]
    fields = _TRAINER_FIELDS[kind]
    spec = obj.get("spec", {})
    problems = _unknown(f"{where} spec", spec, fields["spec"])
    if kind == "TrainingRuntime":
        problems += _unknown(f"{where} mlPolicy", spec.get("mlPolicy", {}), fields["mlPolicy"])
        jobs = runtime_jobs(obj)
        if not any(j["metadata"]["name"].endswith("-node") for j in jobs):
            problems.append(f"{where}: no replicated job 'node' (the trainer's job)")
        for job in jobs:
            problems += schema_problems(job) + policy_problems(job)
        return problems
    trainer = spec.get("trainer", {})
    ref = spec.get("runtimeRef", {})
    problems += _unknown(f"{where} trainer", trainer, fields["trainer"])
    problems += _unknown(f"{where} runtimeRef", ref, fields["runtimeRef"])
    runtimes = {
        (o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] == "TrainingRuntime"
    }
    if ref.get("kind", "ClusterTrainingRuntime") == "TrainingRuntime" and (
        ("TrainingRuntime", ref.get("name")) not in runtimes
    ):
        problems.append(f"{where}: runtimeRef {ref.get('name')!r} is not among the objects")
    resources = trainer.get("resourcesPerNode", {})
    for part in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(part, {}))
        if missing:
            problems.append(f"{where}: resourcesPerNode has no {part} for {sorted(missing)}")
    image_problem = _image_problem(str(trainer["image"])) if "image" in trainer else None
    if image_problem:
        problems.append(f"{where}: {image_problem}")
    return problems
