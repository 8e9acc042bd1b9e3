"""The ``train`` pipeline: data, mine (over shards) → pretrain (GPU) → evaluate, compress, distill.

The same DAG function builds the cluster pipeline (container components, resources, retries, GPU
pool) and the offline one (local twins, which the subprocess runner runs without any of the
Kubernetes settings). Its parameters mirror params.yaml: one ``dict`` per section, defaulting to
the ``default`` profile. ``mine`` runs as plan → ``dsl.ParallelFor`` over the shard indices →
merge of the collected shard directories (offline: one twin task, see
:mod:`selfsup.pipeline.components.mine`). ``retrain`` (:mod:`selfsup.pipeline.retrain`) extends
this DAG with the registry's promotion gate.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's parameter annotations.
from dataclasses import dataclass
from typing import Any

from selfsup.config import Params
from selfsup.pipeline.components import compress, data, distill, evaluate, mine, pretrain
from selfsup.pipeline.gpu import DEFAULT_POOL, GpuPool, use_gpu_pool
from selfsup.pipeline.images import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE
from selfsup.pipeline.task_settings import (
    DEFAULT_RETRY,
    Retry,
    apply_resources,
    apply_retry,
    use_s3,
)
from selfsup.pipeline.tasks import NULLS_KEY

PIPELINE_NAME = "selfsup-train"
# The params.yaml sections this DAG takes as parameters (retrain: all but distill and compress).
SECTIONS = ("data", "mine", "pretrain", "evaluate", "distill", "compress")
DESCRIPTION = (
    "selfsup: data, mine (ParallelFor over video shards) -> pretrain (GPU pool) -> evaluate"
)
# The cluster's S3 store: the MinIO of k8s/base (in-cluster DNS), for videos and the registry.
S3_ENDPOINT = "http://minio.selfsup.svc.cluster.local:9000"


@dataclass(frozen=True)
class ClusterOptions:
    """What differs between clusters: the images, the GPU pool (None: pretrain on CPU), how many
    mining shards run at once, and the S3 endpoint the shards read ``s3://`` videos from."""

    image: str = DEFAULT_IMAGE
    gpu_image: str = DEFAULT_GPU_IMAGE
    gpu: GpuPool | None = DEFAULT_POOL
    retry: Retry = DEFAULT_RETRY
    mine_parallelism: int = 4
    s3_endpoint: str = S3_ENDPOINT


def section_arguments(params: Params) -> dict[str, dict[str, Any]]:
    """Each section as a dict a KFP struct can hold (no nulls), keeping the section's meaning.

    KFP structs refuse null values, and a missing key validates to the field's default. So a
    null that *is* the default is dropped, and a null that overrides a non-null default
    (``max_images: null`` = train on everything) is listed under ``NULLS_KEY`` instead, which
    :func:`selfsup.pipeline.tasks.section_params` turns back into null.
    """
    out: dict[str, dict[str, Any]] = {}
    for section in type(params).model_fields:
        values = getattr(params, section).model_dump(mode="json")
        defaults = type(getattr(params, section))().model_dump(mode="json")
        kept = {k: v for k, v in values.items() if v is not None}
        nulls = sorted(k for k, v in values.items() if v is None and defaults.get(k) is not None)
        out[section] = {**kept, NULLS_KEY: nulls} if nulls else kept
    return out


@dataclass(frozen=True)
class StageOps:
    """The container components of the stages, built for one cluster's images."""

    data: Any
    mine_plan: Any
    mine_shard: Any
    mine_merge: Any
    pretrain: Any
    evaluate: Any
    distill: Any
    compress: Any

    @classmethod
    def for_cluster(cls, opts: ClusterOptions) -> "StageOps":
        return cls(
            data=data.container(opts.image),
            mine_plan=mine.plan_container(opts.image),
            mine_shard=mine.shard_container(opts.image),
            mine_merge=mine.merge_container(opts.image),
            pretrain=pretrain.container(opts.gpu_image if opts.gpu else opts.image),
            evaluate=evaluate.container(opts.image),
            distill=distill.container(opts.gpu_image if opts.gpu else opts.image),
            compress=compress.container(opts.image),
        )


def add_mine_tasks(ops: StageOps, opts: ClusterOptions, mine_params: Any) -> Any:
    """plan → ParallelFor(shard, parallelism) → merge(Collected shards); returns the merge task.

    Shards may read ``s3://`` videos: they get the store's credentials from the Secret and the
    endpoint as environment variables (never values in the compiled YAML).
    """
    from kfp import dsl

    plan = ops.mine_plan(mine_params=mine_params).set_display_name("mine-plan")
    apply_retry(apply_resources(plan, mine.PLAN_RESOURCES), opts.retry)
    with dsl.ParallelFor(plan.outputs["shards"], parallelism=opts.mine_parallelism) as index:
        shard = ops.mine_shard(mine_params=mine_params, index=index).set_display_name("mine-shard")
        apply_retry(apply_resources(shard, mine.SHARD_RESOURCES), opts.retry)
        use_s3(shard, opts.s3_endpoint)
    merged = ops.mine_merge(
        mine_params=mine_params, shards=dsl.Collected(shard.outputs["shard"])
    ).set_display_name("mine-merge")
    apply_retry(apply_resources(merged, mine.MERGE_RESOURCES), opts.retry)
    return merged


def add_train_tasks(
    ops: StageOps,
    opts: ClusterOptions,
    data_params: Any,
    mine_params: Any,
    pretrain_params: Any,
    evaluate_params: Any,
) -> tuple[Any, Any, Any]:
    """data, mine → pretrain (GPU pool) → evaluate, inside the pipeline being defined; returns
    the data, pretrain and evaluate tasks (``retrain`` continues from them)."""
    prepared = ops.data(data_params=data_params).set_display_name("data")
    apply_retry(apply_resources(prepared, data.RESOURCES), opts.retry)
    merged = add_mine_tasks(ops, opts, mine_params)
    trained = ops.pretrain(
        pretrain_params=pretrain_params,
        data_hash=prepared.outputs["content_hash"],
        dataset=prepared.outputs["dataset"],
        mined=merged.outputs["mined"],
    ).set_display_name("pretrain")
    apply_retry(apply_resources(trained, pretrain.RESOURCES), opts.retry)
    if opts.gpu is not None:
        use_gpu_pool(trained, opts.gpu)
    evaluated = add_model_task(ops.evaluate, evaluate, evaluate_params, prepared, trained, opts)
    return prepared, trained, evaluated


def add_model_task(
    op: Any,
    stage: Any,
    stage_params: Any,
    prepared: Any,
    trained: Any,
    opts: ClusterOptions,
    on_gpu: bool = False,
) -> Any:
    """A task of ``stage`` (a component module: evaluate, compress, distill) that reads the
    dataset and the trained encoder; its resources, retries and (``on_gpu``) the GPU pool."""
    task = op(
        **{f"{stage.NAME}_params": stage_params},
        data_hash=prepared.outputs["content_hash"],
        dataset=prepared.outputs["dataset"],
        model=trained.outputs["model"],
    ).set_display_name(stage.NAME)
    apply_retry(apply_resources(task, stage.RESOURCES), opts.retry)
    if on_gpu and opts.gpu is not None:
        use_gpu_pool(task, opts.gpu)
    return task


def build(options: ClusterOptions | None = None, defaults: Params | None = None) -> Any:
    """The ``train`` pipeline for the cluster (container components), as a KFP pipeline."""
    from kfp import dsl

    opts = options or ClusterOptions()
    values = section_arguments(defaults or Params())
    ops = StageOps.for_cluster(opts)

    @dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)
    def train(
        data_params: dict[str, Any] = values["data"],
        mine_params: dict[str, Any] = values["mine"],
        pretrain_params: dict[str, Any] = values["pretrain"],
        evaluate_params: dict[str, Any] = values["evaluate"],
        distill_params: dict[str, Any] = values["distill"],
        compress_params: dict[str, Any] = values["compress"],
    ) -> None:
        prepared, trained, _ = add_train_tasks(
            ops, opts, data_params, mine_params, pretrain_params, evaluate_params
        )
        add_model_task(ops.compress, compress, compress_params, prepared, trained, opts)
        add_model_task(ops.distill, distill, distill_params, prepared, trained, opts, on_gpu=True)

    return train


def add_local_tasks(
    data_params: Any, mine_params: Any, pretrain_params: Any, evaluate_params: Any
) -> tuple[Any, Any, Any]:
    """The local twins of :func:`add_train_tasks` (mine in one task); same returns."""
    prepared = data.twin(data_params=data_params)
    mined = mine.twin(mine_params=mine_params)
    trained = pretrain.twin(
        pretrain_params=pretrain_params,
        data_hash=prepared.outputs["content_hash"],
        dataset=prepared.outputs["dataset"],
        mined=mined.outputs["mined"],
    )
    evaluated = _twin_on_model(evaluate, evaluate_params, prepared, trained)
    return prepared, trained, evaluated


def _twin_on_model(stage: Any, stage_params: Any, prepared: Any, trained: Any) -> Any:
    """The local twin of :func:`add_model_task`."""
    return stage.twin(
        **{f"{stage.NAME}_params": stage_params},
        data_hash=prepared.outputs["content_hash"],
        dataset=prepared.outputs["dataset"],
        model=trained.outputs["model"],
    )


def build_local(defaults: Params | None = None) -> Any:
    """The same DAG with the local twins, for ``kfp.local.SubprocessRunner(use_venv=False)``."""
    from kfp import dsl

    values = section_arguments(defaults or Params())

    @dsl.pipeline(name=PIPELINE_NAME + "-local")
    def train_local(
        data_params: dict[str, Any] = values["data"],
        mine_params: dict[str, Any] = values["mine"],
        pretrain_params: dict[str, Any] = values["pretrain"],
        evaluate_params: dict[str, Any] = values["evaluate"],
        distill_params: dict[str, Any] = values["distill"],
        compress_params: dict[str, Any] = values["compress"],
    ) -> None:
        prepared, trained, _ = add_local_tasks(
            data_params, mine_params, pretrain_params, evaluate_params
        )
        for stage, stage_params in ((compress, compress_params), (distill, distill_params)):
            _twin_on_model(stage, stage_params, prepared, trained)

    return train_local


def pipeline_arguments(
    params: Params, sections: tuple[str, ...] = SECTIONS
) -> dict[str, dict[str, Any]]:
    """The run arguments of the ``train`` pipeline (or of one declaring ``sections``) for
    ``params`` (``<section>_params``).

    Only the sections the DAG declares: a KFP server refuses a run with unknown parameters.
    """
    values = section_arguments(params)
    return {f"{section}_params": values[section] for section in sections}
