"""Component ``mine``: the object graph mined from video, fanned out over video shards.

On the cluster, three container components: ``plan`` lists the shard indices of the ``mine``
section, one ``shard`` task per index runs under ``dsl.ParallelFor`` (each downloads and mines only
its own videos), and ``merge`` collects the shard directories (``dsl.Collected``) into the mined
dataset — deterministic whatever order the shards finish in. Offline, one local twin mines every
shard and merges in one process (``kfp.local`` cannot collect a loop's artifacts).
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "mine"
PLAN_RESOURCES = Resources(
    cpu_request="100m", cpu_limit="500m", memory_request="256Mi", memory_limit="1Gi"
)
SHARD_RESOURCES = Resources(
    cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi"
)
MERGE_RESOURCES = Resources(
    cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi"
)


def plan_container(image: str) -> BaseComponent:
    """Lists the shard indices (``range(mine.num_shards)``) the ParallelFor iterates over."""

    @dsl.container_component
    def mine_plan(
        mine_params: dict[str, Any],
        shards: dsl.OutputPath(list[int]),  # type: ignore[valid-type]
    ) -> dsl.ContainerSpec:
        """The shard indices of the mine section, as a JSON list."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "mine-plan"],
            args=["--params-json", mine_params, "--shards", shards],
        )

    return mine_plan


def shard_container(image: str) -> BaseComponent:
    """Mines one shard of the videos into a shard directory."""

    @dsl.container_component
    def mine_shard(
        mine_params: dict[str, Any],
        index: int,
        shard: dsl.Output[dsl.Artifact],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Mine shard ``index`` of ``mine.num_shards``: tracks, patches, per-video records."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "mine-shard"],
            args=[
                "--params-json", mine_params,
                "--index", index,
                "--shard", shard.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return mine_shard


def merge_container(image: str) -> BaseComponent:
    """Merges the collected shard directories into the mined dataset (graph + patches)."""

    @dsl.container_component
    def mine_merge(
        mine_params: dict[str, Any],
        shards: dsl.Input[list[dsl.Artifact]],
        mined: dsl.Output[dsl.Dataset],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Inter edges by clustering, transitive pairs, the mined dataset; the shard
        directories are found through the executor input (list inputs have no path
        placeholder)."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "mine-merge"],
            args=[
                "--params-json", mine_params,
                "--mined", mined.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return mine_merge


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def mine(
    mine_params: dict[str, Any],
    mined: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of plan → ParallelFor(shard) → merge: every shard, then the merge."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        values = tasks.run_mine(mine_params, Path(mined.path))
        tasks.record_metrics(metrics, values)


twin = mine
