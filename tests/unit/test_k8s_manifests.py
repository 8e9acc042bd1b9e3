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
# Each kustomization: its rendering's name under k8s/rendered/ → its directory.
KUSTOMIZATIONS = {"dev": "k8s/overlays/dev", "gpu": "k8s/overlays/gpu", "trainer": "k8s/trainer"}


def _kubectl_rendering(overlay: str) -> dict[tuple[str, str, str], Object]:
    docs = yaml.safe_load_all((REPO / "k8s/rendered" / f"{overlay}.yaml").read_text())
    return {key(doc): doc for doc in docs if doc}


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    return request.param, render(REPO / KUSTOMIZATIONS[request.param])


def test_python_renderer_reproduces_kubectl_kustomize(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    assert {key(o): o for o in objects} == _kubectl_rendering(overlay), (
        f"{KUSTOMIZATIONS[overlay]} renders differently than k8s/rendered/{overlay}.yaml: "
        "run `make k8s-render` after changing k8s/ and review the diff"
    )


def test_every_object_is_valid_and_follows_the_policy(rendered: tuple[str, list[Object]]) -> None:
    name, objects = rendered
    assert all_problems(objects) == []
    kinds = {o["kind"] for o in objects}
    expected = (
        {"TrainingRuntime", "TrainJob", "PersistentVolumeClaim", "ServiceAccount", "ConfigMap"}
        if name == "trainer"
        else {"Namespace", "StatefulSet", "Service", "Deployment", "ServiceAccount", "Role",
              "RoleBinding", "CronJob", "ConfigMap"}
    )  # fmt: skip
    assert expected <= kinds


def _trainer_objects() -> dict[tuple[str, str, str], Object]:
    return {key(o): o for o in render(REPO / "k8s/trainer")}


def test_trainjob_runs_selfsup_pretrain_under_torchrun_with_valid_options() -> None:
    """The TrainJob's command is torchrun over `selfsup pretrain`, whose options parse with the
    real CLI; the params it mounts are valid params of the gpu profile."""
    import typer.main

    from selfsup.cli import app
    from selfsup.config import load_params, profile_params

    objects = _trainer_objects()
    trainer = objects[("TrainJob", "selfsup", "selfsup-pretrain-ddp")]["spec"]["trainer"]
    assert trainer["command"] == ["torchrun"]
    program, stage, *options = trainer["args"]
    assert program.endswith("/selfsup") and stage == "pretrain"
    group = typer.main.get_command(app)
    command = group.get_command(group.make_context("selfsup", ["pretrain", "--help"]), "pretrain")
    context = command.make_context("pretrain", list(options))
    assert str(context.params["params"]) == "/config/params.yaml" and context.params["resume"]
    params = objects[("ConfigMap", "selfsup", "selfsup-ddp-params")]["data"]["params.yaml"]
    path = REPO / "k8s/trainer/pretrain-params.yaml"
    assert params == path.read_text()
    assert load_params(path) == profile_params("gpu")


def test_trainer_runtime_pods_are_non_root_on_the_gpu_pool_with_a_shared_workspace() -> None:
    from selfsup.deploy.checks import runtime_jobs
    from selfsup.pipeline.gpu import DEFAULT_POOL

    objects = _trainer_objects()
    runtime = objects[("TrainingRuntime", "selfsup", "selfsup-torch-ddp")]
    (job,) = runtime_jobs(runtime)
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["nodeSelector"] == {DEFAULT_POOL.node_label: DEFAULT_POOL.node_value}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    (node,) = pod["containers"]
    assert node["resources"]["limits"]["nvidia.com/gpu"] == "1"
    claim = objects[("PersistentVolumeClaim", "selfsup", "selfsup-ddp-workspace")]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every rank reads the checkpoint
    job_ref = objects[("TrainJob", "selfsup", "selfsup-pretrain-ddp")]["spec"]["runtimeRef"]
    assert job_ref["name"] == runtime["metadata"]["name"]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda o: o["spec"]["trainer"].update(numNode=2), "unknown field 'numNode'"),
        (lambda o: o["spec"]["runtimeRef"].update(name="missing"), "not among the objects"),
        (lambda o: o["spec"]["trainer"]["resourcesPerNode"].pop("limits"), "no limits"),
    ],
)
def test_trainer_checks_catch_each_trainjob_violation(mutate: object, fragment: str) -> None:
    objects = list(_trainer_objects().values())
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "TrainJob"))
    mutate(broken)  # type: ignore[operator]
    others = [o for o in objects if o["kind"] != "TrainJob"]
    assert any(fragment in p for p in all_problems([*others, broken]))


def test_trainer_checks_validate_the_runtime_pod_template_strictly() -> None:
    runtime = copy.deepcopy(_trainer_objects()[("TrainingRuntime", "selfsup", "selfsup-torch-ddp")])
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]
    pod["template"]["spec"]["containers"][0]["resource"] = {}  # a typo kubectl would reject
    pod["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    problems = all_problems([runtime])
    assert any("resource" in p for p in problems)
    assert any("Escalation" in p for p in problems)


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
