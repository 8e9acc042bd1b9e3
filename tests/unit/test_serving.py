"""Serving with KServe: the served model's v2 input/output contract run with onnxruntime as the
server runs it, the InferenceService (committed = rendered, valid, each rule caught), its apply
through the real Kubernetes client against a local API server, the serve task only under the
gate's `promoted` condition in the compiled retrain pipeline, and the deployer's least privilege."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import yaml

from selfsup.config import profile_params
from selfsup.deploy.checks import all_problems, kserve_problems
from selfsup.deploy.render import render
from selfsup.models.artifact import load_encoder, save_encoder
from selfsup.models.encoders import CIFAR_MEAN, CIFAR_STD, build_encoder
from selfsup.serve import kserve

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def encoder_dir(tmp_path: Path) -> Path:
    params = profile_params("tiny").pretrain
    torch.manual_seed(1)
    save_encoder(tmp_path / "encoder", build_encoder(params), params)
    return tmp_path / "encoder"


def test_the_served_onnx_model_keeps_the_v2_contract(encoder_dir: Path, tmp_path: Path) -> None:
    """A v2 /infer request as a client sends it (uint8 images / 255, FP32, row-major data),
    decoded and run as KServe's ONNX runtime does, answers the PyTorch encoder's features."""
    import onnxruntime

    result = kserve.serve_model(encoder_dir, str(tmp_path / "store"), apply_it=False)
    onnx = tmp_path / "store" / "serving" / kserve.model_key(encoder_dir) / "model.onnx"
    assert result["storage_uri"] == str(onnx.parent) and onnx.is_file()
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("images", "tensor(float)", [3, 32, 32])
    assert isinstance(inp.shape[0], str)  # a dynamic batch dimension
    assert (out.name, out.type, out.shape[1:]) == ("features", "tensor(float)", [64])

    pixels = np.random.default_rng(0).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    request = json.dumps({"inputs": [{
        "name": "images", "shape": [5, 3, 32, 32], "datatype": "FP32",
        "data": (pixels.astype(np.float32) / 255.0).ravel().tolist(),
    }]})  # fmt: skip
    (tensor,) = json.loads(request)["inputs"]
    assert tensor["datatype"] == "FP32"
    array = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    (features,) = session.run([out.name], {tensor["name"]: array})
    response = {"outputs": [{"name": out.name, "shape": list(features.shape), "datatype": "FP32",
                             "data": features.ravel().tolist()}]}  # fmt: skip
    assert response["outputs"][0]["shape"] == [5, 64]

    encoder, _ = load_encoder(encoder_dir)
    x = torch.from_numpy(pixels).float() / 255.0
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    with torch.no_grad():  # the normalisation is inside the served graph: the client sends [0,1]
        expected = encoder.backbone((x - mean) / std).numpy()
    served = np.asarray(response["outputs"][0]["data"], dtype=np.float32).reshape(5, 64)
    np.testing.assert_allclose(served, expected, rtol=1e-3, atol=1e-4)


def test_the_committed_inference_service_is_the_rendered_one_and_valid() -> None:
    objects = render(REPO / "k8s/serving")
    assert all_problems(objects) == []
    (isvc,) = [o for o in objects if o["kind"] == "InferenceService"]
    expected = kserve.committed_manifest()
    expected["metadata"]["labels"]["app.kubernetes.io/part-of"] = "selfsup"
    assert isvc == expected
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "onnx"} and model["protocolVersion"] == "v2"
    assert set(model["resources"]) == {"requests", "limits"}
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert account["metadata"]["name"] == isvc["spec"]["predictor"]["serviceAccountName"]
    assert account["secrets"] == [{"name": "selfsup-model-reader"}]
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda s: s["predictor"]["model"].update(storageUri="model.onnx"), "storage URI"),
        (lambda s: s["predictor"]["model"].pop("modelFormat"), "modelFormat.name"),
        (lambda s: s["predictor"].update(minReplica=1), "unknown field 'minReplica'"),
        (lambda s: s["predictor"]["model"]["resources"].pop("limits"), "no limits"),
        (lambda s: s["predictor"]["model"].update(resource={}), "resource"),
        (lambda s: s["predictor"].pop("securityContext") and s["predictor"]["model"][
            "securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda s: s["predictor"]["model"].update(protocolVersion="v3"), "protocolVersion"),
    ],
)  # fmt: skip
def test_the_kserve_checks_catch_each_violation(mutate: Any, fragment: str) -> None:
    broken = copy.deepcopy(kserve.inference_service("s3://selfsup/registry/serving/m-1"))
    assert kserve_problems(broken) == []
    mutate(broken["spec"])
    assert any(fragment in p for p in kserve_problems(broken)), kserve_problems(broken)


class _ApiServer(BaseHTTPRequestHandler):
    """A Kubernetes API server that knows one InferenceService: POST creates it (409 once it
    exists), PATCH merges into it; every request is recorded."""

    seen: ClassVar[list[tuple[str, str, str, dict[str, Any]]]] = []
    stored: ClassVar[dict[str, Any]] = {}

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict[str, Any]:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.command, self.path, self.headers["Content-Type"], body))
        return dict(body)

    def do_POST(self) -> None:
        body = self._record()
        if self.stored:
            self._answer(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
        else:
            self.stored.update(body)
            self._answer(201, body)

    def do_PATCH(self) -> None:
        self.stored.update(self._record())
        self._answer(200, self.stored)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    _ApiServer.seen, _ApiServer.stored = [], {}
    server = HTTPServer(("127.0.0.1", 0), _ApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_apply_creates_then_merge_patches_through_the_kubernetes_client(
    api_server: str, encoder_dir: Path, tmp_path: Path
) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = api_server
    api = client.ApiClient(configuration)
    first = kserve.serve_model(encoder_dir, str(tmp_path / "store"), api_client=api)
    again = kserve.serve_model(encoder_dir, str(tmp_path / "store"), api_client=api)
    assert (first["action"], again["action"]) == ("created", "patched")
    path = "/apis/serving.kserve.io/v1beta1/namespaces/selfsup/inferenceservices"
    methods = [(m, p, t) for m, p, t, _ in _ApiServer.seen]
    assert methods == [
        ("POST", path, "application/json"),
        ("POST", path, "application/json"),
        ("PATCH", f"{path}/selfsup-encoder", "application/merge-patch+json"),
    ]
    sent = _ApiServer.seen[0][3]
    assert sent == first["manifest"]
    assert sent["spec"]["predictor"]["model"]["storageUri"] == first["storage_uri"]
    in_the_store = copy.deepcopy(sent)  # a folder store here; on the cluster s3://…
    in_the_store["spec"]["predictor"]["model"]["storageUri"] = "s3://selfsup/registry/serving/m"
    assert kserve_problems(in_the_store) == []
    assert sent["metadata"]["annotations"] == {"selfsup/model-id": kserve.model_key(encoder_dir)}


def _compiled(name: str) -> dict[str, Any]:
    return dict(next(yaml.safe_load_all((REPO / f"pipelines/golden/{name}.yaml").read_text())))


def _tasks(spec: dict[str, Any]) -> Iterator[tuple[list[str], str, dict[str, Any]]]:
    """Every task of the compiled pipeline: (the tasks above it, its name, its spec)."""

    def walk(dag: dict[str, Any], above: list[str]) -> Iterator[tuple[list[str], str, Any]]:
        for name, task in dag["tasks"].items():
            yield above, name, task
            inner = spec["components"][task["componentRef"]["name"]].get("dag")
            if inner:
                yield from walk(inner, [*above, name])

    yield from walk(spec["root"]["dag"], [])


@pytest.mark.parametrize("pipeline", ["retrain", "retrain-distilled", "forget"])
def test_serve_runs_only_under_the_gates_promoted_condition(pipeline: str) -> None:
    spec = _compiled(pipeline)
    tasks = {name: (above, task) for above, name, task in _tasks(spec)}
    above, _ = tasks["serve"]
    conditions = [tasks[a][1].get("triggerPolicy", {}).get("condition") for a in above]
    assert [c for c in conditions if c] == [
        "inputs.parameter_values['pipelinechannel--register-decision'] == 'promoted'"
    ]
    condition = tasks[above[-1]][1]
    channel = condition["inputs"]["parameters"]["pipelinechannel--register-decision"]
    assert channel["taskOutputParameter"] == {
        "outputParameterKey": "decision",
        "producerTask": "register",
    }
    assert "register" not in above and "condition" in above[-1]
    # Only the serve task mounts the deployer's token.
    executors = spec_platform(pipeline)
    mounts = {e: [v["secretName"] for v in cfg.get("secretAsVolume", [])]
              for e, cfg in executors.items()}  # fmt: skip
    assert {e for e, names in mounts.items() if kserve.DEPLOYER_SECRET in names} == {"exec-serve"}
    assert executors["exec-serve"]["secretAsVolume"][0]["mountPath"] == kserve.DEPLOYER_TOKEN_DIR


def spec_platform(pipeline: str) -> dict[str, Any]:
    docs = list(yaml.safe_load_all((REPO / f"pipelines/golden/{pipeline}.yaml").read_text()))
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return dict(platform)


def test_train_ends_with_the_model_card_and_serves_nothing() -> None:
    spec = _compiled("train")
    tasks = {name: task for _, name, task in _tasks(spec)}
    assert "serve" not in tasks
    card = tasks["model-card"]
    inputs = card["inputs"]["artifacts"]
    assert {k: v["taskOutputArtifact"]["producerTask"] for k, v in inputs.items()} == {
        "evaluation": "evaluate", "model": "pretrain", "compressed": "compress"}  # fmt: skip
    outputs = spec["components"]["comp-model-card"]["outputDefinitions"]["artifacts"]
    assert outputs["card"]["artifactType"]["schemaTitle"] == "system.Markdown"


def test_the_deployer_may_only_create_and_patch_inference_services() -> None:
    objects = render(REPO / "k8s/overlays/dev")
    roles = [
        o
        for o in objects
        if o["kind"] == "Role" and o["metadata"]["name"] == "selfsup-model-deployer"
    ]
    assert [r["rules"] for r in roles] == [
        [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
          "verbs": ["create", "patch"]}]
    ]  # fmt: skip
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"
                  and o["roleRef"]["name"] == "selfsup-model-deployer"]  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "selfsup-model-deployer", "namespace": "selfsup"}
    ]
    (token,) = [o for o in objects if o["metadata"]["name"] == kserve.DEPLOYER_SECRET]
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == (
        "selfsup-model-deployer"
    )
