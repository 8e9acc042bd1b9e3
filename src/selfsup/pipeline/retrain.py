"""The ``retrain`` pipeline, for schedules: the ``train`` DAG, then ``register``.

data → pretrain (GPU pool) → evaluate → register. The last task puts the new model into the
registry (S3, credentials from the ``selfsup-s3`` Secret) and promotes it to ``champion`` only
when the label-free gate says it beats the current one; otherwise the champion stays. It is a side
effect, so it is never cached. The k8s CronJob submits this pipeline (``--pipeline retrain``).
"""

# No `from __future__ import annotations`: KFP reads the pipeline's parameter annotations.
from typing import Any

from selfsup.config import Params, RegistryParams
from selfsup.pipeline import train
from selfsup.pipeline.components import register
from selfsup.pipeline.task_settings import apply_resources, apply_retry, never_cache, use_s3
from selfsup.pipeline.train import (
    ClusterOptions,
    StageOps,
    add_local_tasks,
    add_train_tasks,
    section_arguments,
)

PIPELINE_NAME = "selfsup-retrain"
# The params.yaml sections it takes (the train DAG without distill).
SECTIONS = ("data", "mine", "pretrain", "evaluate")
# The cluster's registry: the MinIO of k8s/base (in-cluster DNS), a versioned bucket.
CLUSTER_REGISTRY = RegistryParams(uri="s3://selfsup/registry")
DESCRIPTION = "selfsup: data -> pretrain (GPU pool) -> evaluate -> register (promotion gate)"


def build(
    options: ClusterOptions | None = None,
    defaults: Params | None = None,
    registry: RegistryParams = CLUSTER_REGISTRY,
) -> Any:
    """The ``retrain`` pipeline for the cluster (container components), as a KFP pipeline."""
    from kfp import dsl

    opts = options or ClusterOptions()
    values = section_arguments(defaults or Params())
    gate = registry.model_dump(mode="json")
    ops = StageOps.for_cluster(opts)
    register_op = register.container(opts.image)

    @dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)
    def retrain(
        data_params: dict[str, Any] = values["data"],
        mine_params: dict[str, Any] = values["mine"],
        pretrain_params: dict[str, Any] = values["pretrain"],
        evaluate_params: dict[str, Any] = values["evaluate"],
        registry_params: dict[str, Any] = gate,
    ) -> None:
        _, trained, evaluated = add_train_tasks(
            ops, opts, data_params, mine_params, pretrain_params, evaluate_params
        )
        registered = register_op(
            registry_params=registry_params,
            model=trained.outputs["model"],
            evaluation=evaluated.outputs["evaluation"],
        ).set_display_name("register")
        apply_retry(apply_resources(registered, register.RESOURCES), opts.retry)
        never_cache(registered)
        use_s3(registered, opts.s3_endpoint)

    return retrain


def build_local(defaults: Params | None = None, registry: RegistryParams | None = None) -> Any:
    """The same DAG with the local twins (``run-local --pipeline retrain``): the register twin
    writes to ``registry.uri`` (a local directory by default, ``./registry``)."""
    from kfp import dsl

    values = section_arguments(defaults or Params())
    gate = (registry or RegistryParams()).model_dump(mode="json")

    @dsl.pipeline(name=PIPELINE_NAME + "-local")
    def retrain_local(
        data_params: dict[str, Any] = values["data"],
        mine_params: dict[str, Any] = values["mine"],
        pretrain_params: dict[str, Any] = values["pretrain"],
        evaluate_params: dict[str, Any] = values["evaluate"],
        registry_params: dict[str, Any] = gate,
    ) -> None:
        _, trained, evaluated = add_local_tasks(
            data_params, mine_params, pretrain_params, evaluate_params
        )
        register.twin(
            registry_params=registry_params,
            model=trained.outputs["model"],
            evaluation=evaluated.outputs["evaluation"],
        )

    return retrain_local


def pipeline_arguments(
    params: Params, registry: RegistryParams = CLUSTER_REGISTRY
) -> dict[str, dict[str, Any]]:
    """The run arguments of ``retrain``: the train sections plus the registry and its gate."""
    return {
        **train.pipeline_arguments(params, SECTIONS),
        "registry_params": registry.model_dump(mode="json"),
    }
