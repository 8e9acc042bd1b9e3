"""Compiled pipelines: golden copies, the GPU pool on exactly the GPU tasks, resources and retries
on every task, the data hash in the cache key, one component object per task wherever it runs,
no pip at run time, no secret values."""

# No `from __future__ import annotations`: KFP reads the test component's annotations.

import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfsup.pipeline import compile as compiling
from selfsup.pipeline.components import TASKS, component
from selfsup.pipeline.dags import CLUSTER_REGISTRY, ClusterOptions, build, pipeline_arguments
from selfsup.pipeline.gpu import DEFAULT_POOL, GpuPool, use_gpu_pool
from selfsup.pipeline.task_settings import never_cache, use_secret_env

REPO = Path(__file__).resolve().parents[2]
GPU_EXECUTORS = {"exec-pretrain", "exec-distill"}  # the tasks that must run on the GPU pool
# The train DAG's tasks with S3 credentials: videos, the failure record, pretrain's checkpoints.
S3_EXECUTORS = {"exec-data", "exec-mine-shard", "exec-outcome", "exec-pretrain"}
LOOP = "for-loop-2"  # KFP numbers the groups: exit-handler-1 holds the run, the loop is 2nd
MINE_TASKS = {"mine-plan", LOOP, "mine-merge"}


@pytest.fixture(scope="module")
def compiled() -> str:
    return compiling.pipeline_yaml("train")


def _docs(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(text))
    spec = docs[0]
    platform = docs[1] if len(docs) > 1 else {}
    return spec, platform


def _with_secret(k8s: dict[str, Any], secret: str = "selfsup-s3") -> set[str]:
    """The executors that get Secret ``secret`` as environment variables."""
    return {
        e
        for e, ex in k8s.items()
        if any(s["secretName"] == secret for s in ex.get("secretAsEnv", []))
    }


def _run_tasks(spec: dict[str, Any]) -> dict[str, Any]:
    """The run's own tasks: those inside the pipeline's exit handler."""
    return dict(spec["components"]["comp-exit-handler-1"]["dag"]["tasks"])


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_each_pipeline_matches_its_golden_copy(name: str) -> None:
    compiled = compiling.pipeline_yaml(name)
    golden = (REPO / "pipelines/golden" / f"{name}.yaml").read_text()
    assert compiling.strip_sdk_version(compiled) == golden, (
        f"the compiled {name} pipeline changed: review, then `make pipelines`"
    )
    assert "sdkVersion" in compiled and "sdkVersion" not in golden


def test_retrain_is_train_then_an_uncached_register_with_secret_env() -> None:
    from selfsup.config import GateParams, profile_params

    spec, platform = _docs(compiling.pipeline_yaml("retrain"))
    tasks = _run_tasks(spec)
    conditions = {t for t in tasks if t.startswith("condition-")}  # serve, when promoted
    assert len(conditions) == 1
    assert (
        set(tasks) - conditions
        == {"validate", "data", "pretrain", "evaluate", "register"} | MINE_TASKS
    )
    register = tasks["register"]
    assert register["cachingOptions"] == {}  # a side effect: never served from cache
    assert set(register["dependentTasks"]) == {"evaluate", "pretrain", "validate"}
    assert register["inputs"]["artifacts"]["evaluation"]["taskOutputArtifact"] == {
        "outputArtifactKey": "evaluation",
        "producerTask": "evaluate",
    }
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert _with_secret(k8s) == {"exec-register", "exec-serve"} | S3_EXECUTORS
    for executor in {"exec-register", "exec-serve"} | S3_EXECUTORS:
        (env,) = [e for e in k8s[executor]["secretAsEnv"] if e["secretName"] == "selfsup-s3"]
        keys = {e["envVar"] for e in env["keyToEnv"]}
        assert keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    declared = set(spec["root"]["inputDefinitions"]["parameters"])
    assert set(pipeline_arguments("retrain", profile_params("tiny"))) == declared
    defaults = spec["root"]["inputDefinitions"]["parameters"]["registry_params"]["defaultValue"]
    assert defaults["uri"] == CLUSTER_REGISTRY.uri
    # The gate's margins come from params.yaml's gate section, the registry's place does not.
    gated = profile_params("tiny").model_copy(
        update={"gate": GateParams(knn_margin=0.2, rankme_margin=1.5, max_forget_gap=0.01)}
    )
    arguments = pipeline_arguments("retrain", gated)
    assert (arguments["knn_margin"], arguments["rankme_margin"]) == (0.2, 1.5)
    assert arguments["registry_params"]["max_forget_gap"] == 0.01
    assert arguments["registry_params"]["uri"] == CLUSTER_REGISTRY.uri


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_component_matches_its_golden_copy(name: str) -> None:
    golden = (REPO / "components" / f"{name}.yaml").read_text()
    assert compiling.strip_sdk_version(compiling.component_yaml(name)) == golden


def test_golden_components_load_as_kfp_components() -> None:
    from kfp import components

    for name in TASKS:
        loaded = components.load_component_from_file(str(REPO / "components" / f"{name}.yaml"))
        assert loaded.name == name


def test_gpu_pool_settings_are_on_exactly_the_gpu_tasks(compiled: str) -> None:
    spec, platform = _docs(compiled)
    executors = spec["deploymentSpec"]["executors"]
    with_accelerator = {
        name for name, ex in executors.items() if "accelerator" in ex["container"]["resources"]
    }
    assert with_accelerator == GPU_EXECUTORS
    accelerator = executors["exec-pretrain"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == DEFAULT_POOL.accelerator
    assert accelerator["resourceCount"] == str(DEFAULT_POOL.count)

    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {name for name, ex in k8s.items() if "nodeSelector" in ex} == GPU_EXECUTORS
    assert {name for name, ex in k8s.items() if "tolerations" in ex} == GPU_EXECUTORS
    assert set(k8s) == set(executors)  # every task: its security context (below)
    pretrain = k8s["exec-pretrain"]
    assert pretrain["nodeSelector"]["labels"] == {DEFAULT_POOL.node_label: DEFAULT_POOL.node_value}
    assert pretrain["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert executors["exec-pretrain"]["container"]["image"].endswith("-cuda")
    assert all(
        executors[e]["container"]["image"].endswith("-cpu") for e in set(executors) - GPU_EXECUTORS
    )


def test_without_a_gpu_pool_no_task_asks_for_gpus() -> None:
    spec, platform = _docs(compiling.pipeline_yaml("train", ClusterOptions(gpu=None)))
    for executor in spec["deploymentSpec"]["executors"].values():
        assert "accelerator" not in executor["container"]["resources"]
        assert executor["container"]["image"].endswith("-cpu")
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert _with_secret(k8s) == S3_EXECUTORS
    assert not any("nodeSelector" in ex or "tolerations" in ex for ex in k8s.values())


def test_gpu_count_reaches_the_compiled_request() -> None:
    spec, _ = _docs(compiling.pipeline_yaml("train", ClusterOptions(gpu=GpuPool(count=4))))
    accelerator = spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["resources"]
    assert accelerator["accelerator"]["resourceCount"] == "4"


@pytest.mark.parametrize("pipeline", sorted(compiling.PIPELINES))
def test_every_task_has_requests_limits_and_retries(pipeline: str) -> None:
    spec, _ = _docs(compiling.pipeline_yaml(pipeline))
    for name, executor in spec["deploymentSpec"]["executors"].items():
        resources = executor["container"]["resources"]
        for field in ("cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"):
            assert resources.get(field), f"{name} has no {field}"
        assert resources["cpuRequest"] <= resources["cpuLimit"]
        assert resources["memoryRequest"] <= resources["memoryLimit"]
    components = spec["components"]
    dags = [spec["root"]["dag"]] + [c["dag"] for c in components.values() if "dag" in c]
    container_tasks = {
        name: task
        for dag in dags
        for name, task in dag["tasks"].items()
        if "dag" not in components[task["componentRef"]["name"]]
    }
    if pipeline in ("train", "retrain"):
        assert {"mine-shard", "pretrain"} <= set(container_tasks)  # the loop's body is included
    for name, task in container_tasks.items():
        if name == "validate":  # a bad value fails the same way each time: never retried
            assert "retryPolicy" not in task
        else:
            assert task["retryPolicy"]["maxRetryCount"] >= 1, name


def test_downstream_cache_keys_include_the_datas_content_hash(compiled: str) -> None:
    spec, _ = _docs(compiled)
    tasks = _run_tasks(spec)
    for name in ("pretrain", "evaluate"):
        source = tasks[name]["inputs"]["parameters"]["data_hash"]["taskOutputParameter"]
        assert source == {"outputParameterKey": "content_hash", "producerTask": "data"}
        assert tasks[name]["cachingOptions"] == {"enableCache": True}


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_every_task_runs_its_function_through_kfps_executor_without_pip(name: str) -> None:
    """Each executor is KFP's own executor over the task function's source, in the project
    image (qualified, versioned tag), with nothing installed at run time."""
    import inspect

    compiled = compiling.pipeline_yaml(name)
    spec, _ = _docs(compiled)
    for executor_name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor["container"]
        task = executor_name.removeprefix("exec-")
        function = TASKS[task].function
        assert container["args"] == [
            "--executor_input",
            "{{$}}",
            "--function_to_execute",
            function.__name__,
        ]
        assert "kfp.dsl.executor_main" in container["command"][2]
        assert inspect.getsource(function) in container["command"][3]
        image = container["image"]
        assert ":" in image and not image.endswith(":latest")
    assert "pip install" not in compiled and "packages_to_install" not in compiled


def _used_components(name: str, options: ClusterOptions) -> set[int]:
    """ids of the component objects pipeline ``name``'s tasks are made from (KFP builds the
    graph when the pipeline function is decorated, inside ``build``)."""
    from kfp.dsl import base_component

    seen: set[int] = set()
    real_call = base_component.BaseComponent.__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.add(id(self))
        return real_call(self, *args, **kwargs)

    base_component.BaseComponent.__call__ = spy  # type: ignore[method-assign]
    try:
        build(name, options)
    finally:
        base_component.BaseComponent.__call__ = real_call  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_every_task_is_the_same_component_object_offline_and_on_the_cluster(name: str) -> None:
    from selfsup.pipeline.local import LOCAL_OPTIONS

    cluster = _used_components(name, ClusterOptions())
    offline = _used_components(name, LOCAL_OPTIONS)
    assert len(cluster) >= 5 and len(offline) >= 5
    bound = {
        n: id(component(n, ClusterOptions().gpu_image if TASKS[n].gpu else ClusterOptions().image))
        for n in TASKS
    }
    fan_out = {bound["mine-plan"], bound["mine-shard"], bound["mine-merge"]}
    # Offline differs only by what kfp.local cannot run: one `mine` task instead of the fan-out,
    # and no exit task.
    # ... and no serve task (no cluster to apply an InferenceService to).
    assert offline - {bound["mine"]} == cluster - fan_out - {bound["outcome"], bound["serve"]}
    assert bound["outcome"] in cluster
    assert cluster <= set(bound.values()) and offline <= set(bound.values())
    if name in ("train", "retrain"):
        assert fan_out <= cluster and bound["mine"] in offline


def test_mining_fans_out_over_the_planned_shards_and_merges_the_collected_ones(
    compiled: str,
) -> None:
    spec, _ = _docs(compiled)
    tasks = _run_tasks(spec)
    loop = tasks[LOOP]
    assert loop["taskInfo"]["name"] == "mine shards"
    assert loop["iteratorPolicy"] == {"parallelismLimit": ClusterOptions().mine_parallelism}
    items = loop["parameterIterator"]["items"]["inputParameter"]
    source = loop["inputs"]["parameters"][items]["taskOutputParameter"]
    assert source == {"outputParameterKey": "Output", "producerTask": "mine-plan"}
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert set(body) == {"mine-shard"}
    merge = tasks["mine-merge"]
    collected = merge["inputs"]["artifacts"]["shards"]["taskOutputArtifact"]
    assert collected["producerTask"] == LOOP
    merge_inputs = spec["components"]["comp-mine-merge"]["inputDefinitions"]["artifacts"]
    assert merge_inputs["shards"]["isArtifactList"] is True
    pretrain = tasks["pretrain"]["inputs"]["artifacts"]["mined"]["taskOutputArtifact"]
    assert pretrain == {"outputArtifactKey": "mined", "producerTask": "mine-merge"}
    shard_env = spec["deploymentSpec"]["executors"]["exec-mine-shard"]["container"]["env"]
    assert {"name": "SELFSUP_S3_ENDPOINT", "value": ClusterOptions().s3_endpoint} in shard_env


def test_pipeline_parameters_mirror_params_yaml(compiled: str) -> None:
    """One struct per params section, plus typed, described knobs for what people change; a
    knob's field is not also in its struct (one place to set it)."""
    from selfsup.config import Params

    spec, _ = _docs(compiled)
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    # Every params section is a pipeline parameter, except unlearn's (deletion requests are
    # served by the forget pipeline) and the gate's (train registers nothing; the pipelines that
    # do take it in registry_params).
    structs = {f"{s}_params" for s in Params.model_fields if s not in ("unlearn", "gate")}
    knobs = {"epochs": "NUMBER_INTEGER", "batch_size": "NUMBER_INTEGER", "method": "STRING",
             "data_source": "STRING"}  # fmt: skip
    assert set(inputs) == structs | set(knobs)
    assert all(inputs[p]["parameterType"] == "STRUCT" for p in structs)
    assert {k: inputs[k]["parameterType"] for k in knobs} == knobs
    assert inputs["epochs"]["defaultValue"] == Params().pretrain.epochs
    assert "epochs" not in inputs["pretrain_params"]["defaultValue"]
    assert "source" not in inputs["data_params"]["defaultValue"]
    # A pod has no local archive: the default reads the store's copy (`selfsup data upload`).
    assert inputs["data_params"]["defaultValue"]["archive"] == "s3://selfsup/sources/cifar10-jpg"
    assert (
        "simclr | " in inputs["method"]["description"] or "byol" in inputs["method"]["description"]
    )
    assert inputs["data_source"]["description"].endswith("folder | synthetic")
    assert all(inputs[p]["description"] for p in inputs)


def test_every_task_reads_the_sections_the_validate_task_checked(compiled: str) -> None:
    """validate runs first, unretried; every task's params come from its outputs, none from
    the pipeline parameters directly."""
    spec, _ = _docs(compiled)
    tasks = _run_tasks(spec)
    assert "retryPolicy" not in tasks["validate"]
    for name, task in tasks.items():
        if name == "validate" or "parameters" not in task.get("inputs", {}):
            continue
        for key, value in task["inputs"]["parameters"].items():
            if key.endswith("_params"):
                assert value["taskOutputParameter"]["producerTask"] == "validate", (name, key)


def test_run_arguments_are_exactly_the_pipeline_parameters(compiled: str) -> None:
    """submit/schedule send no parameter the DAG does not declare (the server would refuse it)."""
    from selfsup.config import profile_params

    spec, _ = _docs(compiled)
    declared = set(spec["root"]["inputDefinitions"]["parameters"])
    for profile in ("default", "tiny", "gpu"):
        assert set(pipeline_arguments("train", profile_params(profile))) == declared


def test_secrets_appear_by_name_only_and_side_effects_are_never_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kfp import dsl

    value = secrets.token_hex(16)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", value)  # a value that must not leak

    @dsl.container_component
    def push() -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="selfsup:0.1.0-cpu", command=["selfsup", "--help"])

    @dsl.pipeline(name="secret-check")
    def pipeline() -> None:
        task = push()
        use_secret_env(task, "selfsup-s3", {"AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"})
        never_cache(task)
        use_gpu_pool(task)

    text = compiling._compile(pipeline)
    spec, platform = _docs(text)
    assert value not in text
    env = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-push"]
    assert env["secretAsEnv"][0]["secretName"] == "selfsup-s3"
    assert spec["root"]["dag"]["tasks"]["push"]["cachingOptions"] == {}


def test_no_secret_material_in_the_committed_yaml() -> None:
    texts = [p.read_text() for p in (REPO / "pipelines/golden").glob("*.yaml")]
    texts += [p.read_text() for p in (REPO / "components").glob("*.yaml")]
    # A Secret's key and env var may be *named* (secretAsEnv maps them); nothing else may
    # mention secret material.
    naming = re.compile(r"^\s*-?\s*(envVar|secretKey): \w+$", re.MULTILINE)
    for text in texts:
        lowered = naming.sub("", text).lower()
        for marker in ("secret_access_key", "password", "token", "begin private key"):
            assert marker not in lowered


def test_unknown_pipeline_is_a_clear_error() -> None:
    from selfsup.pipeline.errors import PipelineError

    with pytest.raises(
        PipelineError, match="available: \\['forget', 'retrain', 'retrain-distilled', 'train'\\]"
    ):
        compiling.pipeline_yaml("deploy")


def test_forget_serves_the_request_on_the_champion_and_promotes_after_the_audit() -> None:
    from selfsup.config import profile_params

    spec, platform = _docs(compiling.pipeline_yaml("forget"))
    tasks = _run_tasks(spec)
    assert {t for t in tasks if not t.startswith("condition-")} == {
        "validate", "data", "pull", "unlearn", "evaluate", "register"}  # fmt: skip
    assert tasks["pull"]["inputs"]["parameters"]["ref"]["runtimeValue"]["constant"] == "champion"
    unlearn = tasks["unlearn"]["inputs"]
    assert unlearn["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == "pull"
    assert unlearn["parameters"]["forget_ids"] == {
        "componentInputParameter": "pipelinechannel--forget_ids"  # passed into the handler
    }
    evaluated = tasks["evaluate"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert evaluated == {"outputArtifactKey": "unlearned", "producerTask": "unlearn"}
    assert set(tasks["register"]["dependentTasks"]) == {"evaluate", "unlearn", "validate"}
    # the same register component as retrain's, through the deletion audit's gate
    assert tasks["register"]["inputs"]["parameters"]["gate"]["runtimeValue"]["constant"] == (
        "deletion"
    )
    for side_effect in ("pull", "unlearn", "register"):
        assert tasks[side_effect]["cachingOptions"] == {}, side_effect
    assert tasks["data"]["cachingOptions"] == {"enableCache": True}
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["forget_ids"]["parameterType"] == "LIST"
    assert set(pipeline_arguments("forget", profile_params("tiny"), forget_ids=["train/1"])) == set(
        inputs
    )

    executors = spec["deploymentSpec"]["executors"]
    gpu = {n for n, ex in executors.items() if "accelerator" in ex["container"]["resources"]}
    assert gpu == {"exec-unlearn"}
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {n for n, ex in k8s.items() if "tolerations" in ex} == {"exec-unlearn"}
    assert _with_secret(k8s) == {
        "exec-data",
        "exec-pull",
        "exec-register",
        "exec-serve",
        "exec-outcome",
    }


def test_a_gpu_pool_without_gpus_is_refused() -> None:
    from selfsup.pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="at least 1 GPU"):
        GpuPool(count=0)


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_every_task_runs_as_the_images_user_observed_under_the_run_id(name: str) -> None:
    """Pod Security "restricted": each executor's container states runAsNonRoot and the UID/GID
    that the Dockerfiles' USER line gives the image; every task gets the Pushgateway address from
    the ConfigMap (optional), its pipeline's name, and KFP's run-id placeholder as ``run_id``."""
    from kfp import dsl

    users = {
        re.search(r"^USER (\d+):(\d+)$", (REPO / f"docker/{v}.Dockerfile").read_text(), re.M)
        for v in ("cpu", "cuda")
    }
    assert len({m.groups() for m in users if m}) == 1 and None not in users
    uid, gid = next(iter(users)).groups()  # type: ignore[union-attr]
    spec, platform = _docs(compiling.pipeline_yaml(name))
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    executors = spec["deploymentSpec"]["executors"]
    assert set(k8s) == set(executors)
    for executor, settings in k8s.items():
        context = settings["securityContext"]
        assert context == {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid}, executor
        (auth,) = [e for e in settings["secretAsEnv"] if e["secretName"] == "selfsup-pushgateway"]
        assert auth["optional"] is True
        assert {e["envVar"] for e in auth["keyToEnv"]} == {
            "SELFSUP_PUSHGATEWAY_USERNAME",
            "SELFSUP_PUSHGATEWAY_PASSWORD",
        }
        (observed,) = settings["configMapAsEnv"]
        assert observed["configMapName"] == "selfsup-observe" and observed["optional"] is True
        assert observed["keyToEnv"] == [
            {"configMapKey": "pushgateway", "envVar": "SELFSUP_PUSHGATEWAY"}
        ], executor
        env = {e["name"]: e["value"] for e in executors[executor]["container"]["env"]}
        assert env["SELFSUP_PIPELINE"] == compiling.PIPELINES[name].name
    tasks = [spec["root"]["dag"]["tasks"]] + [
        c["dag"]["tasks"] for c in spec["components"].values() if "dag" in c
    ]
    run_ids = [
        t["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"]
        for dag in tasks
        for t in dag.values()
        if t["componentRef"]["name"].removeprefix("comp-") in TASKS  # not the loop/handler
    ]
    assert run_ids and set(run_ids) == {dsl.PIPELINE_JOB_ID_PLACEHOLDER}


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_every_pipeline_runs_inside_an_exit_handler_whose_task_sees_the_final_status(
    name: str,
) -> None:
    """The run's tasks are all inside ``dsl.ExitHandler``; its exit task runs whatever happened
    (ALL_UPSTREAM_TASKS_COMPLETED), gets the handler's final status, and the registry when the
    pipeline has one; offline (kfp.local runs no exit handler) the DAG has no such task."""
    spec, _ = _docs(compiling.pipeline_yaml(name))
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", "outcome"}
    exit_task = root["outcome"]
    assert exit_task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert exit_task["dependentTasks"] == ["exit-handler-1"]
    status = exit_task["inputs"]["parameters"]["status"]
    assert status == {"taskFinalStatus": {"producerTask": "exit-handler-1"}}
    registry = exit_task["inputs"]["parameters"]["registry_params"]
    if compiling.PIPELINES[name].registry:
        assert registry == {"componentInputParameter": "registry_params"}
    else:
        assert registry["runtimeValue"]["constant"] == {}
    inner = _run_tasks(spec)
    assert "data" in inner and "outcome" not in inner
    offline = build(name, ClusterOptions(fan_out=False, exit_handler=False))
    local_spec, _ = _docs(compiling._compile(offline))
    assert "outcome" not in local_spec["root"]["dag"]["tasks"]


def test_retrain_distilled_trains_a_student_on_the_champions_distilled_set() -> None:
    """The cheap retrain: the champion is distill's teacher, the student trains on the distilled
    set with the distilled method (forced over any params given), then the same gate."""
    from selfsup.config import profile_params

    spec, _ = _docs(compiling.pipeline_yaml("retrain-distilled"))
    tasks = _run_tasks(spec)
    assert {t for t in tasks if not t.startswith("condition-")} == {
        "validate",
        "data",
        "pull",
        "distill",
        "pretrain-distilled",
        "evaluate",
        "register",
    }
    teacher = tasks["distill"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert teacher == {"outputArtifactKey": "model", "producerTask": "pull"}
    student = tasks["pretrain-distilled"]["inputs"]["artifacts"]["distilled"]
    assert student["taskOutputArtifact"] == {
        "outputArtifactKey": "output",
        "producerTask": "distill",
    }
    registered = tasks["register"]["inputs"]["artifacts"]["candidate"]["taskOutputArtifact"]
    assert registered == {"outputArtifactKey": "model", "producerTask": "pretrain-distilled"}
    defaults = spec["root"]["inputDefinitions"]["parameters"]["pretrain_params"]["defaultValue"]
    assert defaults["method"] == "distilled"
    given = profile_params("tiny")  # method simclr: the pipeline's student recipe wins
    arguments = pipeline_arguments("retrain-distilled", given)
    assert arguments["pretrain_params"]["method"] == "distilled"
    assert arguments["pretrain_params"]["convnet_width"] == given.pretrain.convnet_width
    executors = spec["deploymentSpec"]["executors"]
    assert "accelerator" in executors["exec-pretrain-distilled"]["container"]["resources"]


def test_a_chosen_gpu_model_selects_its_nodes_on_the_gpu_tasks_only() -> None:
    """``--gpu-type``: the GPU tasks also select the nodes GPU feature discovery labels with that
    product; the CLI parses it into the options (the real command, not our constructor)."""
    from typer.testing import CliRunner

    from selfsup.cli import app

    product = "NVIDIA-H100-80GB-HBM3"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train.yaml"
        args = ["pipeline", "compile", "--gpus", "2", "--gpu-type", product, "--out", str(out)]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        spec, platform = _docs(out.read_text())
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    chosen = {
        e for e, ex in k8s.items() if ex.get("nodeSelector", {}).get("labels", {}).get(
            "nvidia.com/gpu.product") == product
    }  # fmt: skip
    assert chosen == GPU_EXECUTORS
    resources = spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["resources"]
    assert resources["accelerator"]["resourceCount"] == "2"
    refused = CliRunner().invoke(app, ["pipeline", "compile", "--gpus", "0", "--gpu-type", product])
    assert refused.exit_code == 2 and "--gpu-type" in refused.output


def test_pretrain_keeps_its_checkpoints_in_the_store_on_the_cluster(compiled: str) -> None:
    """A retried pretrain pod resumes from the store: the task gets the checkpoint store's URI
    (and the S3 credentials above); no other task does."""
    spec, _ = _docs(compiled)
    with_checkpoints = {
        name
        for name, ex in spec["deploymentSpec"]["executors"].items()
        if any(e["name"] == "SELFSUP_CHECKPOINTS" for e in ex["container"].get("env", []))
    }
    assert with_checkpoints == {"exec-pretrain"}
    env = spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["env"]
    assert {"name": "SELFSUP_CHECKPOINTS", "value": ClusterOptions().checkpoints} in env


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_each_pipeline_description_names_every_task(name: str) -> None:
    spec, _ = _docs(compiling.pipeline_yaml(name))
    described = spec["pipelineInfo"]["description"]
    shown = {t["taskInfo"]["name"] for t in _run_tasks(spec).values()} | {"record outcome"}
    shown = {n for n in shown if not n.startswith("for-loop")}
    for task in shown - {"mine shards"}:
        assert task.replace("-", " ") in described.replace("-", " "), task
