"""k8s/: every overlay renders (Python renderer == kubectl's committed rendering), every object
passes strict schema validation for a recent Kubernetes and the container policy."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from selfsup.deploy.checks import all_problems, policy_problems, schema_problems
from selfsup.deploy.kustomize import Object, key, render
from selfsup.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "gpu")


def _kubectl_rendering(overlay: str) -> dict[tuple[str, str, str], Object]:
    docs = yaml.safe_load_all((REPO / "k8s/rendered" / f"{overlay}.yaml").read_text())
    return {key(doc): doc for doc in docs if doc}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    return request.param, render(REPO / "k8s/overlays" / request.param)


def test_python_renderer_reproduces_kubectl_kustomize(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    assert {key(o): o for o in objects} == _kubectl_rendering(overlay), (
        f"k8s/overlays/{overlay} renders differently than k8s/rendered/{overlay}.yaml: "
        "run `make k8s-render` after changing k8s/ and review the diff"
    )


def test_every_object_is_valid_and_follows_the_policy(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    assert all_problems(objects) == []
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "StatefulSet", "Service", "Deployment", "ServiceAccount", "Role",
            "RoleBinding", "CronJob", "ConfigMap"} <= kinds  # fmt: skip


def test_the_secret_template_is_valid_and_holds_no_real_value() -> None:
    template = yaml.safe_load((REPO / "k8s/secret-templates/selfsup-s3.yaml").read_text())
    assert schema_problems(template) == []
    assert all(v.startswith("<") for v in template["stringData"].values())


def test_gpu_overlay_quota_and_retrain_submit_with_gpus() -> None:
    objects = {key(o): o for o in render(REPO / "k8s/overlays/gpu")}
    assert ("ResourceQuota", "selfsup", "selfsup-gpus") in objects
    cron = objects[("CronJob", "selfsup", "selfsup-retrain")]
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--gpus=1" in args and any(a.startswith("--gpu-image=") for a in args)
    dev = {key(o): o for o in render(REPO / "k8s/overlays/dev")}
    dev_args = dev[("CronJob", "selfsup", "selfsup-retrain")]["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]["containers"][0]["args"]
    assert "--gpus=0" in dev_args


def test_retrain_params_are_valid_params() -> None:
    from selfsup.config import load_params

    load_params(REPO / "k8s/base/retrain-params.yaml")


def test_launcher_config_points_at_minio_with_a_secret_ref() -> None:
    objects = {key(o): o for o in render(REPO / "k8s/overlays/dev")}
    providers = yaml.safe_load(
        objects[("ConfigMap", "selfsup", "kfp-launcher")]["data"]["providers"]
    )
    s3 = providers["s3"]["default"]
    assert s3["forcePathStyle"] is True and s3["endpoint"].startswith("minio.selfsup")
    assert s3["credentials"]["secretRef"]["secretName"] == "selfsup-s3"


def _deployment() -> Object:
    objects = render(REPO / "k8s/overlays/dev")
    return copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))


def test_strict_schema_catches_a_misspelled_field() -> None:
    broken = _deployment()
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")
    assert schema_problems(broken)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda c: c["resources"].pop("limits"), "no limits"),
        (lambda c: c["resources"]["requests"].pop("memory"), "no requests for ['memory']"),
        (lambda c: c.update(image="quay.io/prometheus/pushgateway:latest"), ":latest"),
        (lambda c: c.update(image="quay.io/prometheus/pushgateway"), "no tag"),
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "Escalation"),
    ],
)
def test_policy_catches_each_violation(mutate: object, fragment: str) -> None:
    broken = _deployment()
    mutate(broken["spec"]["template"]["spec"]["containers"][0])  # type: ignore[operator]
    assert any(fragment in p for p in policy_problems(broken))


def test_policy_catches_a_root_container() -> None:
    broken = _deployment()
    broken["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")
    assert any("runAsNonRoot" in p for p in policy_problems(broken))


def test_renderer_refuses_unsupported_kustomize_features(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: dev-\n")
    with pytest.raises(ConfigError, match="namePrefix"):
        render(tmp_path)


def test_renderer_applies_a_json_patch_like_kubectl(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1', b: '2'}\n"
    )
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\nnamespace: n\npatches:\n  - target: {kind: ConfigMap, name: c}\n"
        "    patch: |-\n      - {op: replace, path: /data/a, value: x}\n"
        "      - {op: remove, path: /data/b}\n      - {op: add, path: /data/c, value: y}\n"
    )
    (cm,) = render(tmp_path)
    assert cm["data"] == {"a": "x", "c": "y"} and cm["metadata"]["namespace"] == "n"
