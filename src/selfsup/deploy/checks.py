"""Checks every rendered Kubernetes object must pass before it reaches a cluster.

Schema: ``kubernetes-validate`` in strict mode (unknown fields are errors, so a typo such as
``resource:`` for ``resources:`` is caught) against a recent Kubernetes API. Policy: every
container states CPU and memory requests *and* limits, runs as non-root, and names an image by
an explicit tag other than ``latest``; an image from someone else's registry is pinned by digest
(a re-pushed tag must not change what runs; the project's own ``selfsup`` images are pinned at
deploy time with kustomize ``images: digest:``). Across objects: the kustomization that creates
the namespace denies all traffic by default and every allowance names its ports (only the
Kubernetes API may be reached by port alone, only the pods of one workload may reach each other
on any port); MinIO's root Secret reaches no pod but MinIO's own and its setup Job's; a
Pushgateway requires authentication (``--web.config.file`` from a Secret).

A KServe ``InferenceService`` (``serving.kserve.io``) has no schema in ``kubernetes-validate``
either, and KServe's CRD ships in no installable package here: its predictor is checked as the
Pod it becomes (the model as the ``kserve-container``: full strict schema + policy, the image
being the ServingRuntime's), and its own fields against the ``v1beta1`` fields this project
uses (unknown ones are errors), with the model format, protocol and a storage URI required.

Kubeflow Trainer objects (``trainer.kubeflow.org``) are custom resources that
``kubernetes-validate`` has no schema for: a ``TrainingRuntime``'s pod templates are checked as the
``batch/v1`` Jobs they become (full strict schema + policy), and both kinds' own fields against
the ``v1alpha1`` fields this project uses (unknown ones are errors, as in strict mode).
"""

from __future__ import annotations

import re
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


PROJECT_IMAGES = ("selfsup", "selfsup-cuda")  # built and pinned by whoever deploys
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _image_problem(image: str) -> str | None:
    if _DIGEST.search(image):
        return None
    if "@" in image:
        return f"image {image!r} has a malformed digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses :latest"
    if last.split(":")[0] not in PROJECT_IMAGES:
        return f"image {image!r} is not pinned by digest (@sha256:…)"
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
    """Schema and policy problems of every object, and those across the objects."""
    objects = list(objects)
    problems: list[str] = []
    for obj in objects:
        if str(obj.get("apiVersion", "")).startswith(f"{TRAINER_GROUP}/"):
            problems += trainer_problems(obj, objects)
        elif str(obj.get("apiVersion", "")).startswith(f"{KSERVE_GROUP}/"):
            problems += kserve_problems(obj)
        else:
            problems += schema_problems(obj, version) + policy_problems(obj)
    return problems + network_problems(objects) + secret_problems(objects)


# Reached by port alone: the Kubernetes API server, which no pod or namespace selector matches.
API_SERVER_PORTS = {443, 6443}


def _rules(policy: Object) -> list[tuple[str, Object, list[Object]]]:
    spec = policy.get("spec", {})
    return [(direction, rule, rule.get(peers, []))
            for direction, peers in (("ingress", "from"), ("egress", "to"))
            for rule in spec.get(direction, [])]  # fmt: skip


def network_problems(objects: Iterable[Object]) -> list[str]:
    """NetworkPolicy problems: no default deny where the namespace is created; an allowance
    without ports (except between the pods a policy selects); any-destination traffic other
    than egress to the API server's ports."""
    objects = list(objects)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    problems = []
    for namespace in (o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"):
        denies = [
            p for p in policies
            if p["metadata"].get("namespace") == namespace and p["spec"].get("podSelector") == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
        ]  # fmt: skip
        if not denies:
            problems.append(f"namespace {namespace!r}: no default-deny NetworkPolicy")
    for policy in policies:
        where = f"{key(policy)}"
        own = {"podSelector": policy["spec"].get("podSelector")}
        for direction, rule, peers in _rules(policy):
            ports = {p.get("port") for p in rule.get("ports", [])}
            if not peers:
                if direction == "ingress" or not ports or not ports <= API_SERVER_PORTS:
                    problems.append(
                        f"{where}: {direction} from/to anywhere on ports {sorted(ports, key=str)}"
                        f" (only egress to the API server's {sorted(API_SERVER_PORTS)})"
                    )
            elif not ports and peers != [own]:
                problems.append(f"{where}: an {direction} rule names no ports")
            for peer in peers:
                if "ipBlock" in peer and peer["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0"):
                    problems.append(f"{where}: {direction} to the whole internet")
    return problems


MINIO_ROOT_SECRET = "selfsup-minio-root"
# The only workloads that may read MinIO's root credentials.
MINIO_ROOT_READERS = {("StatefulSet", "minio"), ("Job", "minio-setup")}


def _secret_names(node: Any) -> set[str]:
    """Every Secret a (part of an) object references: secretKeyRef, secretRef, secret volumes."""
    found: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            if name in ("secretKeyRef", "secretRef") and isinstance(value, dict):
                found.add(str(value.get("name", value.get("secretName", ""))))
            elif name == "secret" and isinstance(value, dict) and "secretName" in value:
                found.add(str(value["secretName"]))
            elif name in ("secretName",) and isinstance(value, str):
                found.add(value)
            else:
                found |= _secret_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _secret_names(item)
    elif isinstance(node, str) and "secretName:" in node:  # a YAML blob (kfp-launcher providers)
        found |= set(re.findall(r"secretName:\s*(\S+)", node))
    return found


def _is_pushgateway(image: str) -> bool:
    return image.split("@")[0].rsplit(":", 1)[0].endswith("/pushgateway")


def secret_problems(objects: Iterable[Object]) -> list[str]:
    """MinIO's root Secret outside MinIO and its setup Job; a Pushgateway without auth."""
    problems = []
    for obj in objects:
        if obj["kind"] == "Secret":
            continue
        reader = (obj["kind"], obj.get("metadata", {}).get("name"))
        if MINIO_ROOT_SECRET in _secret_names(obj) and reader not in MINIO_ROOT_READERS:
            problems.append(f"{key(obj)}: references MinIO's root Secret {MINIO_ROOT_SECRET!r}")
        pod = pod_spec(obj) or {}
        secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        for container in pod.get("containers", []):
            if not _is_pushgateway(str(container.get("image", ""))):
                continue
            flags = [a for a in [*container.get("command", []), *container.get("args", [])]
                     if a.startswith("--web.config.file=")]  # fmt: skip
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            config = flags[0].split("=", 1)[1] if flags else ""
            from_secret = any(
                config.startswith(path.rstrip("/") + "/") and name in secret_volumes
                for path, name in mounts.items()
            )
            if not from_secret:
                problems.append(
                    f"{key(obj)} container {container.get('name')!r}: the Pushgateway needs "
                    "--web.config.file= on a mounted Secret (basic auth)"
                )
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


KSERVE_GROUP = "serving.kserve.io"
# The serving.kserve.io/v1beta1 fields this project writes (a subset of the CRD's schema).
_KSERVE_FIELDS = {
    "spec": {"predictor"},
    "predictor": {"model", "serviceAccountName", "minReplicas", "maxReplicas", "securityContext",
                  "nodeSelector", "tolerations", "containerConcurrency", "timeout"},
    "model": {"modelFormat", "protocolVersion", "runtime", "storageUri", "resources",
              "securityContext", "env", "args"},
    "modelFormat": {"name", "version"},
}  # fmt: skip
# The container KServe adds for the model, with a stand-in for the ServingRuntime's image.
_RUNTIME_IMAGE = "serving-runtime@sha256:" + "0" * 64


def predictor_pod(obj: Object) -> Object:
    """An InferenceService's predictor as the Pod KServe makes of it (model → kserve-container)."""
    predictor = obj.get("spec", {}).get("predictor", {})
    model = predictor.get("model", {})
    own = {"modelFormat", "protocolVersion", "runtime", "storageUri"}
    container = {k: v for k, v in model.items() if k not in own}
    scaling = ("model", "minReplicas", "maxReplicas", "containerConcurrency", "timeout")
    pod = {k: v for k, v in predictor.items() if k not in scaling}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{obj['metadata']['name']}-predictor",
                     "namespace": obj["metadata"].get("namespace", "default")},
        "spec": {**pod, "containers": [
            {"name": "kserve-container", "image": _RUNTIME_IMAGE, **container}]},
    }  # fmt: skip


def kserve_problems(obj: Object) -> list[str]:
    """Field, schema and policy problems of a KServe InferenceService."""
    where = str(key(obj))
    if obj.get("apiVersion") != f"{KSERVE_GROUP}/v1beta1" or obj["kind"] != "InferenceService":
        return [f"{where}: unsupported {obj.get('apiVersion')}/{obj['kind']}"]
    spec = obj.get("spec", {})
    predictor = spec.get("predictor", {})
    model = predictor.get("model", {})
    problems = _unknown(f"{where} spec", spec, _KSERVE_FIELDS["spec"])
    problems += _unknown(f"{where} predictor", predictor, _KSERVE_FIELDS["predictor"])
    problems += _unknown(f"{where} model", model, _KSERVE_FIELDS["model"])
    model_format = model.get("modelFormat", {})
    problems += _unknown(f"{where} modelFormat", model_format, _KSERVE_FIELDS["modelFormat"])
    if not model.get("modelFormat", {}).get("name"):
        problems.append(f"{where}: predictor.model.modelFormat.name is missing")
    if model.get("protocolVersion", "v1") not in ("v1", "v2", "grpc-v2"):
        problems.append(f"{where}: unknown protocolVersion {model.get('protocolVersion')!r}")
    if not re.match(r"^(s3|gs|pvc|https?|hdfs|oci)://\S+$", str(model.get("storageUri", ""))):
        problems.append(f"{where}: predictor.model.storageUri is not a storage URI")
    for name in ("minReplicas", "maxReplicas"):
        if not isinstance(predictor.get(name, 1), int) or predictor.get(name, 1) < 0:
            problems.append(f"{where}: predictor.{name} must be a non-negative integer")
    pod = predictor_pod(obj)
    return problems + schema_problems(pod) + policy_problems(pod)
