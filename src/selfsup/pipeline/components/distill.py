"""Component ``distill``: the data distilled into m learnt images + targets (KRR-ST), a GPU task.

Teacher: the ``pretrain`` task's encoder. Output: the distilled dataset (``selfsup pretrain
--method distilled`` reads it — the cheap input of scheduled retraining) and the stage's metrics.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "distill"
RESOURCES = Resources(cpu_request="2", cpu_limit="8", memory_request="8Gi", memory_limit="16Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the CUDA variant on GPU pools)."""

    @dsl.container_component
    def distill(
        distill_params: dict[str, Any],
        data_hash: str,
        dataset: dsl.Input[dsl.Dataset],
        model: dsl.Input[dsl.Model],
        distilled: dsl.Output[dsl.Dataset],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Distill the train split with the encoder as teacher (KRR-ST)."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "distill"],
            args=[
                "--params-json", distill_params,
                "--data-hash", data_hash,
                "--dataset", dataset.path,
                "--model", model.path,
                "--distilled", distilled.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return distill


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def distill(
    distill_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    distilled: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        tasks.check_data_hash(Path(dataset.path), data_hash)
        values = tasks.run_distill(
            distill_params, Path(dataset.path), Path(model.path), Path(distilled.path)
        )
        tasks.record_metrics(metrics, values)


twin = distill
