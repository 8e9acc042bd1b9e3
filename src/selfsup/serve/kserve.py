"""Serving the encoder with KServe: its ONNX export in the store and an ``InferenceService``.

The served contract is the exported graph's (:mod:`selfsup.compress.export`): input ``images``,
float32 ``[N,3,32,32]`` in [0,1] (the CIFAR-10 normalisation is inside the graph), output
``features``, float32 ``[N,D]``. KServe's ONNX runtime speaks the Open Inference (v2) protocol:
``POST /v2/models/<name>/infer`` with ``{"inputs": [{"name": "images", "shape": [N,3,32,32],
"datatype": "FP32", "data": [...]}]}``. ``tests/unit/test_serving_contract.py`` runs exactly that
request's tensors through onnxruntime.

:func:`serve_model` exports the encoder (checked against PyTorch with onnxruntime), uploads
``model.onnx`` to ``<store>/serving/<model id>/`` (an immutable prefix per model: a promotion
patches ``storageUri`` and KServe rolls out a new revision; a rollback is the old prefix) and
applies :func:`inference_service` through the Kubernetes API (create, or a merge patch when it
exists: the deployer's Role allows exactly those two verbs). ``apply=False`` renders only.

The committed ``k8s/serving/inferenceservice.yaml`` is :func:`inference_service` for the
``champion`` prefix (``python -m selfsup.serve.kserve --write`` regenerates it; a test compares).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from selfsup.errors import SelfsupError

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
NAME = "selfsup-encoder"
NAMESPACE = "selfsup"
# The model server pods' identity: it holds the read-only S3 Secret the storage initializer uses.
SERVICE_ACCOUNT = "selfsup-model-server"
# The serve task's credentials: the deployer ServiceAccount's token Secret, mounted here (only
# that task gets it; k8s/base/serving-rbac.yaml).
DEPLOYER_SECRET = "selfsup-model-deployer-sa"
DEPLOYER_TOKEN_DIR = "/var/run/secrets/selfsup-deployer"
IMAGE_SIZE = 32
MODEL_FILE = "model.onnx"
SERVING_PREFIX = "serving"
# The model server's user (the Triton / ONNX runtime images run as an unprivileged user).
SERVER_UID = 1000


class ServeError(SelfsupError):
    """The model could not be exported, uploaded or applied."""


def inference_service(
    storage_uri: str, name: str = NAME, namespace: str = NAMESPACE, model_id: str = ""
) -> dict[str, Any]:
    """The ``InferenceService`` serving the ONNX model at ``storage_uri`` (a prefix holding
    ``model.onnx``): v2 protocol, non-root, requests and limits, one replica at least."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "selfsup"}
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if model_id:
        meta["annotations"] = {"selfsup/model-id": model_id}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {
            "predictor": {
                "serviceAccountName": SERVICE_ACCOUNT,
                "minReplicas": 1,
                "maxReplicas": 2,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": SERVER_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "protocolVersion": "v2",
                    "storageUri": storage_uri,
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"cpu": "2", "memory": "2Gi"},
                    },
                    "securityContext": {
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                },
            }
        },
    }


def export_checked(model_dir: Path, out: Path) -> Path:
    """``model_dir``'s encoder as ``out/model.onnx``, checked against PyTorch by onnxruntime on
    a seeded batch (compress's tolerances)."""
    import torch

    from selfsup.compress.export import check_export, export_onnx, run_onnx
    from selfsup.config import CompressParams
    from selfsup.models.artifact import load_encoder

    encoder, _ = load_encoder(Path(model_dir))
    images = torch.rand(8, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    path = Path(out) / MODEL_FILE
    export_onnx(encoder, path, images[:2])
    with torch.no_grad():
        reference = encoder(images)
    tolerance = CompressParams()
    check_export(
        reference, run_onnx(path, images), tolerance.onnx_atol, tolerance.onnx_rtol, "ONNX"
    )
    return path


def model_key(model_dir: Path) -> str:
    """The model's registry id (the prefix it is served from)."""
    from selfsup.models.artifact import MODEL_KIND
    from selfsup.registry.registry import model_id
    from selfsup.store import read_manifest

    return model_id(read_manifest(Path(model_dir), kind=MODEL_KIND))


def upload(onnx: Path, store: str, version: str) -> str:
    """Put ``onnx`` at ``<store>/serving/<version>/model.onnx``; returns the storageUri."""
    from selfsup.store.open import open_backend

    key = f"{SERVING_PREFIX}/{version}/{MODEL_FILE}"
    open_backend(store).put_file(key, onnx)
    return f"{store.rstrip('/')}/{SERVING_PREFIX}/{version}"


def kubernetes_api() -> Any:
    """A Kubernetes API client: the deployer's mounted token in a pod that has it, else the
    pod's own ServiceAccount, else ``~/.kube/config`` (a person running ``selfsup serve``)."""
    from kubernetes import client, config  # type: ignore[import-untyped]

    token_dir = Path(DEPLOYER_TOKEN_DIR)
    if (token_dir / "token").is_file():
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        configuration = client.Configuration()
        configuration.host = f"https://{host}:{port}"
        configuration.api_key = {"authorization": (token_dir / "token").read_text().strip()}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.ssl_ca_cert = str(token_dir / "ca.crt")
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise ServeError(
                f"no Kubernetes credentials (in-cluster or kubeconfig): {exc}"
            ) from None
    return client.ApiClient()


def apply(manifest: dict[str, Any], api_client: Any = None) -> str:
    """Create the InferenceService, or merge-patch it when it exists: ``created``/``patched``."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

    api = client.CustomObjectsApi(api_client or kubernetes_api())
    meta = manifest["metadata"]
    where = (GROUP, VERSION, meta["namespace"], PLURAL)
    try:
        api.create_namespaced_custom_object(*where, manifest)
        return "created"
    except ApiException as exc:
        if exc.status != 409:
            raise ServeError(
                f"creating InferenceService {meta['name']}: {exc.status} {exc.reason}"
            ) from None
    try:
        api.patch_namespaced_custom_object(*where, meta["name"], manifest)
    except ApiException as exc:
        raise ServeError(
            f"patching InferenceService {meta['name']}: {exc.status} {exc.reason}"
        ) from None
    return "patched"


def serve_model(
    model_dir: Path,
    store: str,
    name: str = NAME,
    namespace: str | None = NAMESPACE,
    *,
    apply_it: bool = True,
    version: str | None = None,
    api_client: Any = None,
) -> dict[str, Any]:
    """Export, upload and (``apply_it``) apply; returns the storageUri, the manifest and the
    action (``created``/``patched``/``rendered``). ``namespace=None``: the pod's own."""
    key = model_key(model_dir)
    if namespace is None:
        own = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        namespace = own.read_text().strip() if own.is_file() else NAMESPACE
    with tempfile.TemporaryDirectory(prefix="selfsup-serve-") as tmp:
        onnx = export_checked(model_dir, Path(tmp))
        size = onnx.stat().st_size
        storage_uri = upload(onnx, store, version or key)
    manifest = inference_service(storage_uri, name, namespace, key)
    action = apply(manifest, api_client) if apply_it else "rendered"
    return {"action": action, "storage_uri": storage_uri, "onnx_bytes": size, "manifest": manifest}


def serve_promoted(model_dir: str | Path, registry_uri: str) -> dict[str, Any]:
    """The ``serve`` task: the promoted model served from the registry's store
    (``$SELFSUP_REGISTRY`` wins, as for ``register``), in the pod's namespace."""
    store = os.environ.get("SELFSUP_REGISTRY") or registry_uri
    result = serve_model(Path(model_dir), store, namespace=None)
    created = result["action"] == "created"
    return {
        "created": float(created),
        "onnx_bytes": result["onnx_bytes"],
        "storage_uri": result["storage_uri"],
    }


def committed_manifest() -> dict[str, Any]:
    """What ``k8s/serving/inferenceservice.yaml`` holds: the champion's prefix in the cluster's
    registry store."""
    return inference_service(f"s3://selfsup/registry/{SERVING_PREFIX}/champion")


if (
    __name__ == "__main__"
):  # python -m selfsup.serve.kserve --write k8s/serving/inferenceservice.yaml
    import sys

    import yaml

    head = "# Generated by `python -m selfsup.serve.kserve --write`: edit selfsup.serve.kserve.\n"
    text = head + yaml.safe_dump(committed_manifest(), sort_keys=False)
    if sys.argv[1:2] == ["--write"]:
        Path(sys.argv[2]).write_text(text)
    else:
        sys.stdout.write(text)
