"""k8s/: every kustomization renders with the real kustomize (`kubectl kustomize`, v5+), every
object passes strict schema validation for a recent Kubernetes and the policy, and every selfsup
container's command, arguments and environment parse with the real `selfsup` CLI to the values
the workload must act on."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from selfsup.deploy.checks import all_problems, policy_problems, schema_problems
from selfsup.deploy.render import KUSTOMIZE_MIN, Object, key, kustomize_version, render
from selfsup.deploy.workloads import (
    KUSTOMIZATIONS,
    Invocation,
    invocations,
    option_envvars,
    parse_selfsup,
    pipeline_tasks,
    replace_table,
    table,
)
from selfsup.pipeline.components import TASKS
from selfsup.pipeline.images import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE

REPO = Path(__file__).resolve().parents[2]


def test_kustomize_is_the_real_one_v5_or_newer() -> None:
    """No skip: without kubectl's Kustomize v5 the k8s checks fail here, saying what to install."""
    assert kustomize_version() >= KUSTOMIZE_MIN


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    return request.param, render(REPO / KUSTOMIZATIONS[request.param])


def test_every_object_is_valid_and_follows_the_policy(rendered: tuple[str, list[Object]]) -> None:
    name, objects = rendered
    assert all_problems(objects) == []
    kinds = {o["kind"] for o in objects}
    expected = (
        {"TrainingRuntime", "TrainJob", "PersistentVolumeClaim", "ServiceAccount", "ConfigMap",
         "NetworkPolicy"}
        if name == "trainer"
        else {"InferenceService", "ServiceAccount", "NetworkPolicy"}
        if name == "serving"
        else {"Namespace", "StatefulSet", "Service", "Deployment", "ServiceAccount", "Role",
              "RoleBinding", "CronJob", "ConfigMap", "NetworkPolicy", "Job"}
    )  # fmt: skip
    assert expected <= kinds


def _trainer_objects() -> dict[tuple[str, str, str], Object]:
    return {key(o): o for o in render(REPO / "k8s/trainer")}


# What every shipped selfsup process must act on, per kustomization: the subcommand and the
# values the real CLI parses from the rendered command, arguments and environment.
_DEV, _PROD = "localhost:5000/selfsup", "registry.example.com/ml/selfsup"
_SUBMIT = {
    "host": "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
    "namespace": "selfsup",
    "pipeline": "retrain",
    "experiment": "selfsup-retrain",
    "params": Path("/config/params.yaml"),
}
EXPECTED: dict[str, dict[tuple[str, str], tuple[tuple[str, ...], dict[str, object]]]] = {
    "dev": {
        ("CronJob selfsup-retrain (dev)", "submit"): (
            ("pipeline", "submit"),
            {**_SUBMIT, "image": f"{_DEV}:0.1.0-cpu", "gpu_image": f"{_DEV}:0.1.0-cuda",
             "gpus": 0, "gpu_type": None},
        ),
    },
    "gpu": {
        ("CronJob selfsup-retrain (gpu)", "submit"): (
            ("pipeline", "submit"),
            {**_SUBMIT, "image": f"{_PROD}:0.1.0-cpu", "gpu_image": f"{_PROD}:0.1.0-cuda",
             "gpus": 1, "gpu_type": None},
        ),
    },
    "trainer": {
        ("TrainJob selfsup-pretrain-ddp (trainer)", "fetch-data"): (
            ("store", "pull"),
            {"name": "datasets/cifar10", "dest": Path("/scratch/data"),
             "store": "s3://selfsup/store"},
        ),
        ("TrainJob selfsup-pretrain-ddp (trainer)", "node"): (
            ("pretrain",),
            {"params": Path("/config/params.yaml"), "data": Path("/scratch/data"),
             "out": Path("/work/encoder"), "checkpoints": Path("/work/encoder.ckpt"),
             "resume": True},
        ),
    },
    "serving": {},  # the model server runs KServe's runtime image, no selfsup process
}  # fmt: skip
# The params file each kustomization's workloads read, and the profile it must equal.
PARAMS_FILES = {
    "dev": ("k8s/base/retrain-params.yaml", "default"),
    "gpu": ("k8s/base/retrain-params.yaml", "default"),
    "trainer": ("k8s/trainer/pretrain-params.yaml", "gpu"),
}


def test_every_selfsup_container_parses_to_the_values_it_must_act_on(
    rendered: tuple[str, list[Object]],
) -> None:
    """The rendered workloads, parsed by the real CLI with their environment applied (nothing
    runs): the subcommand, image, GPU images and counts, params path, experiment, pipeline."""
    from selfsup.config import load_params, profile_params
    from selfsup.pipeline.dags import cluster_defaults

    overlay, objects = rendered
    found = {(inv.workload, inv.container): inv for inv in invocations(overlay, objects)}
    assert set(found) == set(EXPECTED[overlay])
    source, profile = PARAMS_FILES.get(overlay, ("", ""))
    for where, (command, values) in EXPECTED[overlay].items():
        inv = found[where]
        assert inv.command == command, where
        assert {name: inv.params[name] for name in values} == values, where
        # The params file exists in the mounted ConfigMap and is the committed, valid file.
        if "params" in values:
            config_map, item = inv.config_files[str(inv.params["params"])].split("/")
            (cm,) = [o for o in objects if key(o) == ("ConfigMap", "selfsup", config_map)]
            assert cm["data"][item] == (REPO / source).read_text()
            # ... the profile, with the data read from the store (a pod has no local archive)
            assert load_params(REPO / source) == cluster_defaults(profile_params(profile))
    by_name = {inv.container: inv for inv in found.values()}
    if overlay == "serving":
        assert not by_name  # KServe's runtime serves the model: no selfsup process here
    elif overlay in ("dev", "gpu"):
        # The CronJob runs the very image it hands the pipeline's CPU tasks.
        assert by_name["submit"].params["image"] == by_name["submit"].image
    else:
        assert by_name["node"].gpus == 1 and by_name["node"].argv[0] == "torchrun"
        assert by_name["node"].image == by_name["fetch-data"].image == f"{_PROD}:0.1.0-cuda"


def test_the_cronjob_settings_are_only_variables_its_command_reads(
    rendered: tuple[str, list[Object]],
) -> None:
    """A misspelled setting (SELFSUP_GPU=1) would be ignored by the CLI: every SELFSUP_ key the
    CronJob's container gets must be an option's variable."""
    overlay, objects = rendered
    for inv in invocations(overlay, objects):
        if inv.command == ("pipeline", "submit"):
            assert _unread(inv) == set()


def _unread(inv: Invocation) -> set[str]:
    read = option_envvars(inv.command)
    return (
        {name for name in inv.env if name.startswith("SELFSUP_")}
        - read
        - {"SELFSUP_PUSHGATEWAY", "SELFSUP_S3_ENDPOINT", "SELFSUP_PIPELINE", "SELFSUP_RUN_ID"}
    )


def test_a_misspelled_cronjob_setting_is_caught() -> None:
    objects = render(REPO / "k8s/overlays/gpu")
    settings = next(o for o in objects if o["metadata"]["name"] == "selfsup-retrain-settings")
    settings["data"]["SELFSUP_GPU"] = settings["data"].pop("SELFSUP_GPUS")
    (inv,) = [i for i in invocations("gpu", objects) if i.container == "submit"]
    assert _unread(inv) == {"SELFSUP_GPU"} and inv.params["gpus"] == 1  # the option's default


def test_the_cli_refuses_a_bad_setting_from_the_environment() -> None:
    import typer

    with pytest.raises(typer.BadParameter, match="greater than or equal to 0"):
        parse_selfsup(["pipeline", "submit"], {"SELFSUP_KFP_HOST": "h", "SELFSUP_GPUS": "-1"})


def test_no_patch_addresses_a_list_by_position() -> None:
    """The overlays' settings come by name: no JSON patch path with a list index (`args/5`)."""
    for path in sorted(REPO.glob("k8s/**/kustomization.yaml")):
        for patch in yaml.safe_load(path.read_text()).get("patches", []):
            body = yaml.safe_load(patch.get("patch", "")) if "patch" in patch else None
            if isinstance(body, list):  # a JSON 6902 operation list
                for op in body:
                    assert not re.search(r"/(\d+|-)(/|$)", op["path"]), (path, op["path"])


def test_compiled_pipeline_tasks_run_their_own_functions_on_the_right_image() -> None:
    """Each compiled task's container, parsed by KFP's own executor_main argument parser, runs
    the task's function, which its embedded source defines; GPU tasks run on the CUDA image,
    the rest on the CPU."""
    paths = sorted((REPO / "pipelines/golden").glob("*.yaml"))
    assert {p.stem for p in paths} >= {"train", "retrain", "forget"}
    for path in paths:
        tasks = pipeline_tasks(path)
        assert tasks, path
        for task in tasks:
            assert task.defined, (path.name, task.executor, task.function)
            assert task.function == TASKS[task.executor].function.__name__
            assert task.image == (DEFAULT_GPU_IMAGE if task.gpus else DEFAULT_IMAGE)
            assert task.image.startswith("localhost:5000/selfsup:")  # fully qualified


def test_the_workloads_table_in_the_docs_is_true() -> None:
    """docs/kubeflow.md's table, regenerated from the rendered manifests and compiled pipelines."""
    doc = (REPO / "docs/kubeflow.md").read_text()
    assert replace_table(doc, table(REPO)) == doc, (
        "docs/kubeflow.md's workloads table is stale: run "
        "`python -m selfsup.deploy.workloads --write docs/kubeflow.md` (make k8s-docs)"
    )


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


def test_the_secret_templates_are_valid_and_hold_no_real_value() -> None:
    paths = sorted((REPO / "k8s/secret-templates").glob("*.yaml"))
    assert {p.stem for p in paths} == {
        "selfsup-s3",
        "selfsup-minio-root",
        "selfsup-registry",
        "selfsup-pushgateway",
        "selfsup-model-reader",
    }
    for path in paths:
        template = yaml.safe_load(path.read_text())
        assert schema_problems(template) == [], path
        for name, value in template["stringData"].items():
            if name == "web-config.yml":  # the Pushgateway's: a placeholder where the hash goes
                users = yaml.safe_load(value)["basic_auth_users"]
                assert all(v.startswith("<") for v in users.values()), path
            elif name != "username":
                assert value.startswith("<"), (path, name)


def test_gpu_overlay_has_the_gpu_quota() -> None:
    objects = {key(o): o for o in render(REPO / "k8s/overlays/gpu")}
    quota = objects[("ResourceQuota", "selfsup", "selfsup-gpus")]
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"


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


# --- issue 15, cluster hardening: every new rule has a test that mutates a shipped object ---


def _dev() -> list[Object]:
    return copy.deepcopy(render(REPO / "k8s/overlays/dev"))


def _named(objects: list[Object], kind: str, name: str) -> Object:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def _container(obj: Object) -> Object:
    from selfsup.deploy.checks import pod_spec

    return (pod_spec(obj) or {})["containers"][0]


def test_third_party_images_are_pinned_by_digest(rendered: tuple[str, list[Object]]) -> None:
    from selfsup.deploy.checks import PROJECT_IMAGES, pod_spec

    _, objects = rendered
    for obj in objects:
        for c in (pod_spec(obj) or {}).get("containers", []):
            name = c["image"].split("@")[0].rsplit("/", 1)[-1].split(":")[0]
            assert name in PROJECT_IMAGES or re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), c


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        ("quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z", "not pinned by digest"),
        ("quay.io/minio/minio@sha256:abc", "malformed digest"),
    ],
)
def test_policy_catches_an_unpinned_image(image: str, fragment: str) -> None:
    minio = _named(_dev(), "StatefulSet", "minio")
    _container(minio)["image"] = image
    assert any(fragment in p for p in policy_problems(minio))


def _deny_rules() -> list[tuple[str, object, str]]:
    def drop_default_deny(objects: list[Object]) -> None:
        objects.remove(_named(objects, "NetworkPolicy", "default-deny"))

    def portless(objects: list[Object]) -> None:
        _named(objects, "NetworkPolicy", "minio-ingress")["spec"]["ingress"][0].pop("ports")

    def ingress_from_anywhere(objects: list[Object]) -> None:
        _named(objects, "NetworkPolicy", "minio-ingress")["spec"]["ingress"][0].pop("from")

    def egress_anywhere_on_80(objects: list[Object]) -> None:
        rules = _named(objects, "NetworkPolicy", "pipeline-tasks")["spec"]["egress"]
        rules.append({"ports": [{"protocol": "TCP", "port": 80}]})

    def internet(objects: list[Object]) -> None:
        rules = _named(objects, "NetworkPolicy", "pipeline-tasks")["spec"]["egress"]
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]})

    return [
        ("no default deny", drop_default_deny, "no default-deny"),
        ("rule without ports", portless, "names no ports"),
        ("ingress from anywhere", ingress_from_anywhere, "ingress from/to anywhere"),
        ("egress anywhere on 80", egress_anywhere_on_80, "egress from/to anywhere on ports [80]"),
        ("internet", internet, "to the whole internet"),
    ]


@pytest.mark.parametrize(("_name", "mutate", "fragment"), _deny_rules(), ids=lambda v: str(v)[:24])
def test_network_policy_checks_catch_each_violation(
    _name: str, mutate: object, fragment: str
) -> None:
    objects = _dev()
    assert all_problems(objects) == []
    mutate(objects)  # type: ignore[operator]
    assert any(fragment in p for p in all_problems(objects))


def _selects(selector: Object, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and the Exists/In operators used)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        if expr["operator"] == "Exists" and not present:
            return False
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_every_pod_is_denied_by_default_and_has_its_own_allowances() -> None:
    """Over everything deployed together (base + trainer): each workload's pods fall under the
    default deny and under at least one allowance, and each allowance selects some pod (a
    selector typo would leave a workload cut off or a policy dead)."""
    from selfsup.deploy.checks import pod_spec, runtime_jobs

    objects = [*render(REPO / "k8s/overlays/gpu"), *render(REPO / "k8s/trainer")]
    objects += render(REPO / "k8s/serving")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods: dict[str, dict[str, str]] = {}
    for obj in objects:
        holders = runtime_jobs(obj) if obj["kind"] == "TrainingRuntime" else [obj]
        for holder in holders:
            if pod_spec(holder) is not None:
                spec = holder["spec"].get("jobTemplate", {}).get("spec", holder["spec"])
                pods[holder["metadata"]["name"]] = spec["template"]["metadata"].get("labels", {})
    pods["a pipeline task"] = {"workflows.argoproj.io/workflow": "selfsup-train-abcde"}
    # KServe labels the predictor pods with the InferenceService's name.
    pods["the model server"] = {"serving.kserve.io/inferenceservice": "selfsup-encoder"}
    assert {"minio", "pushgateway", "selfsup-retrain", "minio-setup"} <= set(pods)
    for pod, labels in pods.items():
        chosen = [
            p["metadata"]["name"] for p in policies if _selects(p["spec"]["podSelector"], labels)
        ]
        assert "default-deny" in chosen and "allow-dns" in chosen, pod
        assert set(chosen) - {"default-deny", "allow-dns"}, f"{pod} has no allowance"
    for policy in policies:
        assert any(_selects(policy["spec"]["podSelector"], labels) for labels in pods.values())


def test_the_minio_root_key_reaches_only_minio_and_its_setup_job() -> None:
    from selfsup.deploy.checks import MINIO_ROOT_SECRET

    objects = [*render(REPO / "k8s/overlays/gpu"), *render(REPO / "k8s/trainer")]
    assert all_problems(objects) == []
    readers = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["kind"] != "ConfigMap" and MINIO_ROOT_SECRET in yaml.safe_dump(o)
    }
    assert readers == {("StatefulSet", "minio"), ("Job", "minio-setup")}
    # The compiled pipelines' tasks never name it either (they get the tasks user's Secret).
    for path in [*REPO.glob("pipelines/golden/*.yaml"), *REPO.glob("components/*.yaml")]:
        assert MINIO_ROOT_SECRET not in path.read_text(), path


@pytest.mark.parametrize("where", ["cronjob env", "launcher config"])
def test_policy_catches_the_root_key_in_another_pod(where: str) -> None:
    objects = _dev()
    if where == "cronjob env":
        cron = _named(objects, "CronJob", "selfsup-retrain")
        ref = {"name": "selfsup-minio-root", "key": "MINIO_ROOT_PASSWORD"}
        _container(cron)["env"].append(
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": ref}}
        )
    else:
        launcher = _named(objects, "ConfigMap", "kfp-launcher")
        launcher["data"]["providers"] = launcher["data"]["providers"].replace(
            "secretName: selfsup-s3", "secretName: selfsup-minio-root"
        )
    assert any("MinIO's root Secret" in p for p in all_problems(objects))


def test_minio_policies_give_each_purpose_only_its_prefixes() -> None:
    """Read with IAM's matching (ARN globs): tasks write their bucket and checkpoints, not the
    registry; the registry writer writes the registry only; nothing grants s3:* or *."""
    from fnmatch import fnmatchcase

    cm = _named(render(REPO / "k8s/overlays/dev"), "ConfigMap", "minio-setup")
    policies = {
        name.removesuffix("-policy.json"): yaml.safe_load(text)
        for name, text in cm["data"].items()
        if name.endswith("-policy.json")
    }

    def allowed(purpose: str, action: str, resource: str) -> bool:
        return any(
            st["Effect"] == "Allow"
            and any(fnmatchcase(action, a) for a in st["Action"])
            and any(fnmatchcase(f"arn:aws:s3:::{resource}", r) for r in st["Resource"])
            for st in policies[purpose]["Statement"]
        )

    for policy in policies.values():
        for statement in policy["Statement"]:
            assert "*" not in statement["Action"] and "s3:*" not in statement["Action"]
            assert all(r.startswith("arn:aws:s3:::selfsup") for r in statement["Resource"])
    assert allowed("tasks", "s3:PutObject", "selfsup-pipelines/run/x")
    assert allowed("tasks", "s3:PutObject", "selfsup/checkpoints/key/last.pt")
    assert allowed("tasks", "s3:GetObject", "selfsup/registry/champion.json")
    assert not allowed("tasks", "s3:PutObject", "selfsup/registry/champion.json")
    assert not allowed("tasks", "s3:PutObject", "selfsup/store/datasets/x")
    assert allowed("registry-writer", "s3:PutObject", "selfsup/registry/champion.json")
    assert not allowed("registry-writer", "s3:PutObject", "selfsup-pipelines/x")
    assert not allowed("registry-writer", "s3:PutObject", "selfsup/store/x")
    assert allowed("data-writer", "s3:PutObject", "selfsup/store/datasets/x")
    assert allowed("data-writer", "s3:PutObject", "selfsup/sources/blobs/ab/x")
    assert allowed("data-writer", "s3:PutObject", "selfsup/dvc/files/md5/ab/cd")
    assert allowed("tasks", "s3:GetObject", "selfsup/sources/manifests/cifar10-jpg.json")
    assert not allowed("tasks", "s3:PutObject", "selfsup/sources/manifests/cifar10-jpg.json")
    assert not allowed("data-writer", "s3:PutObject", "selfsup/registry/x")
    # The model server's storage initializer reads the served models, nothing else.
    assert allowed("model-reader", "s3:GetObject", "selfsup/registry/serving/m-1/model.onnx")
    assert not allowed("model-reader", "s3:GetObject", "selfsup/registry/models/m-1.json")
    assert not allowed("model-reader", "s3:PutObject", "selfsup/registry/serving/m-1/model.onnx")


def test_the_minio_setup_script_is_valid_shell_and_uses_every_policy(tmp_path: Path) -> None:
    import shutil
    import subprocess

    cm = _named(render(REPO / "k8s/overlays/dev"), "ConfigMap", "minio-setup")
    script = cm["data"]["setup.sh"]
    (tmp_path / "setup.sh").write_text(script)
    sh = shutil.which("sh")
    assert sh is not None
    subprocess.run([sh, "-n", str(tmp_path / "setup.sh")], check=True)  # the shell's own parser
    purposes = re.search(r"for purpose in ([a-z -]+); do", script)
    assert purposes is not None
    assert {f"{p}-policy.json" for p in purposes.group(1).split()} == {
        n for n in cm["data"] if n.endswith(".json")
    }
    job = _named(render(REPO / "k8s/overlays/dev"), "Job", "minio-setup")
    assert _container(job)["command"] == ["/bin/sh", "/setup/setup.sh"]
    assert "selfsup-tasks" in script and "selfsup-registry-writer" in script


@pytest.mark.parametrize("mutation", ["no web config", "web config not from a Secret"])
def test_policy_catches_a_pushgateway_without_auth(mutation: str) -> None:
    objects = _dev()
    gateway = _named(objects, "Deployment", "pushgateway")
    assert all_problems(objects) == []
    if mutation == "no web config":
        _container(gateway)["args"] = []
    else:
        gateway["spec"]["template"]["spec"]["volumes"] = [{"name": "web-config", "emptyDir": {}}]
    assert any("basic auth" in p for p in all_problems(objects))
