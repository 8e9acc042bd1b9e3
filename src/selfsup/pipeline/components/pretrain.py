"""Component ``pretrain``: self-supervised pretraining (``selfsup pretrain``), a GPU task.

``mined`` is the ``mine`` task's dataset: the methods that train on mined pairs read it, the
others ignore it (the edge still orders the DAG, so one DAG serves every method).

``data_hash`` is unused by the stage itself: it is the dataset's content hash, passed so that
KFP's cache key (which sees parameters, not artifact contents) changes when the data does.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "pretrain"
RESOURCES = Resources(cpu_request="4", cpu_limit="8", memory_request="8Gi", memory_limit="16Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CUDA variant on GPU pools)."""

    @dsl.container_component
    def pretrain(
        pretrain_params: dict[str, Any],
        data_hash: str,
        dataset: dsl.Input[dsl.Dataset],
        mined: dsl.Input[dsl.Dataset],
        model: dsl.Output[dsl.Model],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Pretrain an encoder on the dataset's train split (and the mined pairs)."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "pretrain"],
            args=[
                "--params-json", pretrain_params,
                "--data-hash", data_hash,
                "--dataset", dataset.path,
                "--mined", mined.path,
                "--model", model.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return pretrain


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def pretrain(
    pretrain_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    mined: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        tasks.check_data_hash(Path(dataset.path), data_hash)
        values = tasks.run_pretrain(
            pretrain_params, Path(dataset.path), Path(model.path), Path(mined.path)
        )
        tasks.record_metrics(metrics, values)


twin = pretrain
