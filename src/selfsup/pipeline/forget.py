"""The ``forget`` pipeline: a deletion request → unlearn → evaluate → audit → promote.

data (the dataset version the ids index) and pull (the registry's ``champion``, never cached)
→ unlearn (GPU pool, never cached: LAF + its audit against no-op / fine-tune / retrain) →
evaluate (the unlearned encoder) → forget-register (never cached): the unlearned encoder enters
the registry with the request in its lineage and replaces the champion only when it was unlearned
from that champion and the audit is within the registry's margins of retraining. The request —
``forget_ids``, sample ids ``train/<index>`` — is a run parameter; the full record
(``request.json``: ids, time, model versions before/after, audit) is the ``request`` artifact.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's parameter annotations.
from typing import Any

from selfsup.config import Params, RegistryParams
from selfsup.pipeline.components import data, evaluate, forget_register, pull, unlearn
from selfsup.pipeline.gpu import use_gpu_pool
from selfsup.pipeline.retrain import CLUSTER_REGISTRY
from selfsup.pipeline.task_settings import apply_resources, apply_retry, never_cache, use_s3
from selfsup.pipeline.train import ClusterOptions, section_arguments

PIPELINE_NAME = "selfsup-forget"
DESCRIPTION = "selfsup: deletion request -> unlearn (GPU pool) -> evaluate -> audit -> promote"
SECTIONS = ("data", "unlearn", "evaluate")
CHAMPION = "champion"


def build(
    options: ClusterOptions | None = None,
    defaults: Params | None = None,
    registry: RegistryParams = CLUSTER_REGISTRY,
) -> Any:
    """The ``forget`` pipeline for the cluster (container components), as a KFP pipeline."""
    from kfp import dsl

    opts = options or ClusterOptions()
    values = section_arguments(defaults or Params())
    gate = registry.model_dump(mode="json")
    data_op = data.container(opts.image)
    pull_op = pull.container(opts.image)
    unlearn_op = unlearn.container(opts.gpu_image if opts.gpu else opts.image)
    evaluate_op = evaluate.container(opts.image)
    register_op = forget_register.container(opts.image)

    @dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)
    def forget(
        forget_ids: list[str] = [],  # noqa: B006 (KFP reads the default; an empty request fails)
        data_params: dict[str, Any] = values["data"],
        unlearn_params: dict[str, Any] = values["unlearn"],
        evaluate_params: dict[str, Any] = values["evaluate"],
        registry_params: dict[str, Any] = gate,
    ) -> None:
        prepared = data_op(data_params=data_params).set_display_name("data")
        apply_retry(apply_resources(prepared, data.RESOURCES), opts.retry)
        champion = pull_op(registry_params=registry_params, ref=CHAMPION).set_display_name(
            "pull champion"
        )
        apply_retry(apply_resources(champion, pull.RESOURCES), opts.retry)
        use_s3(never_cache(champion), opts.s3_endpoint)
        served = unlearn_op(
            unlearn_params=unlearn_params,
            forget_ids=forget_ids,
            data_hash=prepared.outputs["content_hash"],
            dataset=prepared.outputs["dataset"],
            model=champion.outputs["model"],
        ).set_display_name("unlearn")
        apply_retry(apply_resources(never_cache(served), unlearn.RESOURCES), opts.retry)
        if opts.gpu is not None:
            use_gpu_pool(served, opts.gpu)
        evaluated = evaluate_op(
            evaluate_params=evaluate_params,
            data_hash=prepared.outputs["content_hash"],
            dataset=prepared.outputs["dataset"],
            model=served.outputs["unlearned"],
        ).set_display_name("evaluate")
        apply_retry(apply_resources(evaluated, evaluate.RESOURCES), opts.retry)
        registered = register_op(
            registry_params=registry_params,
            request=served.outputs["request"],
            evaluation=evaluated.outputs["evaluation"],
        ).set_display_name("audit and promote")
        apply_retry(apply_resources(registered, forget_register.RESOURCES), opts.retry)
        use_s3(never_cache(registered), opts.s3_endpoint)

    return forget


def build_local(defaults: Params | None = None, registry: RegistryParams | None = None) -> Any:
    """The same DAG with the local twins (``run-local --pipeline forget``)."""
    from kfp import dsl

    values = section_arguments(defaults or Params())
    gate = (registry or RegistryParams()).model_dump(mode="json")

    @dsl.pipeline(name=PIPELINE_NAME + "-local")
    def forget_local(
        forget_ids: list[str] = [],  # noqa: B006
        data_params: dict[str, Any] = values["data"],
        unlearn_params: dict[str, Any] = values["unlearn"],
        evaluate_params: dict[str, Any] = values["evaluate"],
        registry_params: dict[str, Any] = gate,
    ) -> None:
        prepared = data.twin(data_params=data_params)
        champion = pull.twin(registry_params=registry_params, ref=CHAMPION)
        served = unlearn.twin(
            unlearn_params=unlearn_params,
            forget_ids=forget_ids,
            data_hash=prepared.outputs["content_hash"],
            dataset=prepared.outputs["dataset"],
            model=champion.outputs["model"],
        )
        evaluated = evaluate.twin(
            evaluate_params=evaluate_params,
            data_hash=prepared.outputs["content_hash"],
            dataset=prepared.outputs["dataset"],
            model=served.outputs["unlearned"],
        )
        forget_register.twin(
            registry_params=registry_params,
            request=served.outputs["request"],
            evaluation=evaluated.outputs["evaluation"],
        )

    return forget_local


def pipeline_arguments(
    params: Params, forget_ids: list[str], registry: RegistryParams = CLUSTER_REGISTRY
) -> dict[str, Any]:
    """The run arguments of ``forget``: the request, its sections and the registry's margins."""
    sections = section_arguments(params)
    return {
        "forget_ids": list(forget_ids),
        **{f"{section}_params": sections[section] for section in SECTIONS},
        "registry_params": registry.model_dump(mode="json"),
    }
