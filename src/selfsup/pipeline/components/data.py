"""Component ``data``: prepare the dataset (``selfsup data prepare``'s library call).

Outputs the dataset directory, the stage's metrics and the dataset's content hash, which later
tasks take as a parameter so KFP's cache key changes exactly when the data does.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "data"
RESOURCES = Resources(cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="4Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CPU variant)."""

    @dsl.container_component
    def data(
        data_params: dict[str, Any],
        dataset: dsl.Output[dsl.Dataset],
        metrics: dsl.Output[dsl.Metrics],
        content_hash: dsl.OutputPath(str),  # type: ignore[valid-type]
    ) -> dsl.ContainerSpec:
        """Prepare the dataset: uint8 shards + manifest (sha256 of every file)."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "data"],
            args=[
                "--params-json", data_params,
                "--dataset", dataset.path,
                "--metrics", metrics.path,
                "--content-hash", content_hash,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return data


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def data(
    data_params: dict[str, Any],
    dataset: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    content_hash: dsl.OutputPath(str),  # type: ignore[valid-type]
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        values, digest = tasks.run_data(data_params, Path(dataset.path))
        tasks.record_metrics(metrics, values)
        Path(content_hash).write_text(digest)


twin = data
