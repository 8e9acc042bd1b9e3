"""Compiled pipelines: golden copies, the GPU pool on exactly the GPU tasks, resources and retries
on every task, the data hash in the cache key, container components only, no secret values."""

# No `from __future__ import annotations`: KFP reads the test component's annotations.

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfsup.pipeline import compile as compiling
from selfsup.pipeline.gpu import DEFAULT_POOL, GpuPool, use_gpu_pool
from selfsup.pipeline.task_settings import never_cache, use_secret_env
from selfsup.pipeline.train import ClusterOptions

REPO = Path(__file__).resolve().parents[2]
GPU_EXECUTORS = {"exec-pretrain"}  # the tasks that must run on the GPU pool


@pytest.fixture(scope="module")
def compiled() -> str:
    return compiling.pipeline_yaml("train")


def _docs(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(text))
    spec = docs[0]
    platform = docs[1] if len(docs) > 1 else {}
    return spec, platform


@pytest.mark.parametrize("name", sorted(compiling.PIPELINES))
def test_each_pipeline_matches_its_golden_copy(name: str) -> None:
    compiled = compiling.pipeline_yaml(name)
    golden = (REPO / "pipelines/golden" / f"{name}.yaml").read_text()
    assert compiling.strip_sdk_version(compiled) == golden, (
        f"the compiled {name} pipeline changed: review, then `make pipelines`"
    )
    assert "sdkVersion" in compiled and "sdkVersion" not in golden


def test_retrain_is_train_then_an_uncached_register_with_secret_env() -> None:
    from selfsup.config import profile_params
    from selfsup.pipeline.retrain import CLUSTER_REGISTRY, pipeline_arguments

    spec, platform = _docs(compiling.pipeline_yaml("retrain"))
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"data", "pretrain", "evaluate", "register"}
    register = tasks["register"]
    assert register["cachingOptions"] == {}  # a side effect: never served from cache
    assert set(register["dependentTasks"]) == {"evaluate", "pretrain"}
    assert register["inputs"]["artifacts"]["evaluation"]["taskOutputArtifact"] == {
        "outputArtifactKey": "evaluation",
        "producerTask": "evaluate",
    }
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(k8s) == {"exec-pretrain", "exec-register"}  # GPU pool / secret, nothing else
    env = k8s["exec-register"]["secretAsEnv"][0]
    assert env["secretName"] == "selfsup-s3"
    assert {e["envVar"] for e in env["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    declared = set(spec["root"]["inputDefinitions"]["parameters"])
    assert set(pipeline_arguments(profile_params("tiny"))) == declared
    defaults = spec["root"]["inputDefinitions"]["parameters"]["registry_params"]["defaultValue"]
    assert defaults["uri"] == CLUSTER_REGISTRY.uri


@pytest.mark.parametrize("name", sorted(compiling.COMPONENTS))
def test_each_component_matches_its_golden_copy(name: str) -> None:
    golden = (REPO / "components" / f"{name}.yaml").read_text()
    assert compiling.strip_sdk_version(compiling.component_yaml(name)) == golden


def test_golden_components_load_as_kfp_components() -> None:
    from kfp import components

    for name in compiling.COMPONENTS:
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
    assert set(k8s) == GPU_EXECUTORS
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
    assert not platform


def test_gpu_count_reaches_the_compiled_request() -> None:
    spec, _ = _docs(compiling.pipeline_yaml("train", ClusterOptions(gpu=GpuPool(count=4))))
    accelerator = spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["resources"]
    assert accelerator["accelerator"]["resourceCount"] == "4"


def test_every_task_has_requests_limits_and_retries(compiled: str) -> None:
    spec, _ = _docs(compiled)
    for name, executor in spec["deploymentSpec"]["executors"].items():
        resources = executor["container"]["resources"]
        for field in ("cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"):
            assert resources.get(field), f"{name} has no {field}"
        assert resources["cpuRequest"] <= resources["cpuLimit"]
        assert resources["memoryRequest"] <= resources["memoryLimit"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        assert task["retryPolicy"]["maxRetryCount"] >= 1, name


def test_downstream_cache_keys_include_the_datas_content_hash(compiled: str) -> None:
    spec, _ = _docs(compiled)
    tasks = spec["root"]["dag"]["tasks"]
    for name in ("pretrain", "evaluate"):
        source = tasks[name]["inputs"]["parameters"]["data_hash"]["taskOutputParameter"]
        assert source == {"outputParameterKey": "content_hash", "producerTask": "data"}
        assert tasks[name]["cachingOptions"] == {"enableCache": True}


def test_tasks_are_container_components_running_selfsup(compiled: str) -> None:
    spec, _ = _docs(compiled)
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor["container"]
        assert container["command"][:3] == ["selfsup", "pipeline", "task"], name
        assert "{{$}}" in container["args"]  # metrics reach the UI via the executor output
        image = container["image"]
        assert ":" in image and not image.endswith(":latest")
    assert "pip install" not in compiled and "packages_to_install" not in compiled


def test_pipeline_parameters_mirror_params_yaml(compiled: str) -> None:
    from selfsup.config import Params

    spec, _ = _docs(compiled)
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    # Every params section is a pipeline parameter, except those of stages the train pipeline
    # does not run yet (mine: its KFP ParallelFor component is still to come; distill: the lead
    # adds its KFP component).
    not_in_pipeline = {"mine", "distill"}
    assert set(inputs) == {
        f"{section}_params" for section in Params.model_fields if section not in not_in_pipeline
    }
    assert all(p["parameterType"] == "STRUCT" for p in inputs.values())
    assert inputs["pretrain_params"]["defaultValue"]["epochs"] == Params().pretrain.epochs


def test_run_arguments_are_exactly_the_pipeline_parameters(compiled: str) -> None:
    """submit/schedule send no parameter the DAG does not declare (the server would refuse it)."""
    from selfsup.config import profile_params
    from selfsup.pipeline.train import pipeline_arguments

    spec, _ = _docs(compiled)
    declared = set(spec["root"]["inputDefinitions"]["parameters"])
    for profile in ("default", "tiny", "gpu"):
        assert set(pipeline_arguments(profile_params(profile))) == declared


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

    with pytest.raises(PipelineError, match="available: \\['retrain', 'train'\\]"):
        compiling.pipeline_yaml("forget")


def test_a_gpu_pool_without_gpus_is_refused() -> None:
    from selfsup.pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="at least 1 GPU"):
        GpuPool(count=0)
